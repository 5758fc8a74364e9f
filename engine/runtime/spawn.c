// Starting a container's first process from Go without starting Go again.
//
// The child is cloned with CLONE_VM | CLONE_VFORK, as glibc's posix_spawn
// and Go's own os/exec do: it borrows the caller's address space instead of
// copying it (a fork of a Go process copies tens of megabytes of page tables
// and then pays a copy-on-write fault for every page either side touches),
// and the calling thread sleeps in clone until the child has execve'd or
// exited. The rest of the Go process runs on meanwhile, so the child must
// touch nothing but its own stack and the program Go wrote into C memory
// for it (see child.c), and no Go signal handler may ever run in it.

#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

// Room for the child and for a sibling it may fork (VS_CLONE_PARENT); the
// program's steps need a few kilobytes.
#define STACK_SIZE (64 * 1024)

int vs_spawn(struct vs_prog *p) {
	// [guard][child's stack][guard][sibling's stack]: an overflow faults
	// instead of running into memory the Go process uses.
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = 2 * (page + STACK_SIZE);
	char *mem = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	if (mprotect(mem + page, STACK_SIZE, PROT_READ | PROT_WRITE) < 0 ||
	    mprotect(mem + 2 * page + STACK_SIZE, STACK_SIZE, PROT_READ | PROT_WRITE) < 0) {
		int err = errno;
		munmap(mem, len);
		return -err;
	}
	p->stack2 = mem + len; // stacks grow down: pass the top
	p->tid[0] = p->tid[1] = 0;

	// Block every signal, the two glibc reserves included (hence the raw
	// syscall), so that none is handled in the child before it has reset
	// the handlers to the default: they are Go's, and would run on the
	// child's stack with this thread's Go state.
	uint64_t all = ~(uint64_t)0, old;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
	int flags = CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | SIGCHLD | p->clone_flags;
	int pid = clone(vs_child, mem + page + STACK_SIZE, flags, p, (pid_t *)&p->tid[0]);
	int err = errno;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);

	munmap(mem, len);
	return pid < 0 ? -err : pid;
}
