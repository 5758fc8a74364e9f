// Entering the lab before the Go runtime starts.
//
// A lab is a fresh set of namespaces with vscript's Starlark interpreter as
// PID 1. Go cannot unshare a mount namespace once its threads run, and a PID
// namespace only applies to children, so without help vscript would have to
// start a second copy of itself: two Go start-ups, the larger part of an
// empty lab's time. This constructor runs first, while the process is still
// single-threaded C: for a lab run it unshares the namespaces and forks. The
// child — PID 1 of the new PID namespace — goes on into Go and runs the
// script; the parent stays here, a few pages of C: it wires the world while
// the child's Go runtime starts (world.c), then passes signals on and exits
// with the lab's status. Every other invocation (version, doc, --host,
// helpers re-exec'd by the engine, test binaries) passes through untouched;
// Go's Spawn enters a lab from those by running the program again with
// _VSCRIPT_LAB set.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "world.h"

int vscript_lab_entered;      // 1 in the lab's PID 1
int vscript_lab_errno;        // why entering failed, for Go to report
int vscript_world_fd = -1;    // in the lab's PID 1: where the world comes from

static pid_t lab_pid;

// map_program maps the program's read-only segments (code, read-only data)
// in one call. The lab's Go start-up touches most of them, and faulting them
// in a page at a time costs ~15 µs a fault on a paravirtualised VM, the more
// faults the smaller the pieces the file sits in the page cache in: an empty
// lab takes ~550 faults when the binary was just linked, ~700 when it was
// read back from disk, and ~540 either way after this (~0.5 ms for 14 MB).
static int map_program(struct dl_phdr_info *info, size_t size, void *data) {
	(void)size, (void)data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
			continue;
		uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)4095;
		uintptr_t end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		madvise((void *)start, end - start, MADV_POPULATE_READ); // best effort
	}
	return 1; // the program is listed first; the libraries are small
}

static void forward(int sig) {
	if (lab_pid > 0)
		kill(lab_pid, sig);
}

// is_lab_run reports whether argv asks to run a lab script in a sandbox:
// `vscript [flags] [run] FILE ...` without --host. It mirrors the CLI's flag
// set (cli.go); anything it is unsure of is left to Go.
static int is_lab_run(int argc, char **argv) {
	if (getenv("_VSCRIPT_REEXEC"))
		return 0; // an engine helper
	if (getenv("_VSCRIPT_LAB"))
		return 1; // Go's Spawn, for a program not named vscript
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (strcmp(base, "vscript") != 0)
		return 0; // test binaries and renamed copies take the Go path
	static const char *subcommands[] = {"version", "doc", "help", "completion", "images", "volumes",
	                                    "volume", "prune", "clean", "test", NULL};
	int seen_run = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--host") == 0 || strncmp(a, "--host=", 7) == 0 ||
		    strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return 0;
		if (strcmp(a, "--root") == 0 || strcmp(a, "--seed") == 0) {
			i++;
			continue;
		}
		if (strcmp(a, "--") == 0)
			return i + 1 < argc;
		if (a[0] == '-')
			continue;
		if (!seen_run && strcmp(a, "run") == 0) {
			seen_run = 1;
			continue;
		}
		if (!seen_run)
			for (const char **s = subcommands; *s; s++)
				if (strcmp(a, *s) == 0)
					return 0;
		return 1; // the script
	}
	return 0;
}

__attribute__((constructor)) static void vscript_enter_lab(int argc, char **argv) {
	if (!is_lab_run(argc, argv))
		return;
	if (unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC) < 0) {
		vscript_lab_errno = errno;
		return;
	}
	int alive[2]; // the parent holds the write end for as long as it lives
	int world[2]; // the parent sends the world down it
	if (pipe2(alive, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, world) < 0) {
		vscript_lab_errno = errno;
		return;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	lab_pid = fork();
	if (lab_pid < 0) {
		vscript_lab_errno = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return;
	}
	if (lab_pid == 0) {
		// The lab must die with vscript, even by kill -9. If the parent
		// died before PDEATHSIG was armed, the pipe tells.
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(alive[1]);
		struct pollfd p = {.fd = alive[0], .events = POLLIN};
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
			_exit(137);
		close(alive[0]);
		close(world[1]);
		vscript_world_fd = world[0];
		int cpu = sched_getcpu(); // for the parent to wire the world elsewhere
		send(world[0], &cpu, sizeof cpu, MSG_NOSIGNAL);
		dl_iterate_phdr(map_program, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		vscript_lab_entered = 1;
		return; // on into Go, as PID 1 of the lab
	}

	close(alive[0]);
	close(world[0]);
	struct sigaction sa = {.sa_handler = forward};
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	vscript_make_world(world[1]);
	int status;
	while (waitpid(lab_pid, &status, 0) < 0)
		if (errno != EINTR)
			_exit(1);
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}
