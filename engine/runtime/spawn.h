// The program a container's first process runs between clone and execve,
// shared by the Go side (program.go), which writes it, and the C side
// (spawn.c, child.c), which runs it.
//
// Everything here lives in C memory that Go allocated before the call, and
// stays untouched until vs_spawn returns: the child shares the caller's
// address space (CLONE_VM) until it execve's.

#ifndef VSCRIPT_RUNTIME_SPAWN_H
#define VSCRIPT_RUNTIME_SPAWN_H

#include <stdint.h>

// One step of the child's program. Which fields count depends on code.
enum vs_opcode {
	VS_MOUNT = 1,    // mount(s[0], s[1], s[2], n[0], s[3])
	VS_REMOUNT_RO,   // remount s[0] read-only, keeping its per-mount flags
	VS_UMOUNT,       // umount2(s[0], n[0])
	VS_MKDIR,        // mkdir(s[0], n[0]); an existing one is fine
	VS_MKFILE,       // create the empty file s[0]; an existing one is fine
	VS_MKNOD,        // mknod(s[0], n[0], n[1])
	VS_SYMLINK,      // symlink(s[0], s[1])
	VS_CHDIR,        // chdir(s[0])
	VS_PIVOT_ROOT,   // pivot_root(s[0], s[1])
	VS_SETNS,        // setns(n[0], n[1])
	VS_SETHOSTNAME,  // sethostname(s[0])
	VS_LO_UP,        // bring the loopback interface up
	VS_SETSID,       // setsid()
	VS_PTY_OPEN,     // open a terminal in /dev/pts (master and slave)
	VS_PTY_CONSOLE,  // bind the terminal over /dev/console
	VS_PTY_STDIO,    // make it the controlling terminal and stdio 0-2
	VS_PTY_SEND,     // send the master to the parent (report VS_R_PTY)
	VS_STDIO,        // dup2 n[0], n[1], n[2] onto 0, 1, 2, and close them
	VS_WRITE,        // write s[0] to descriptor n[0] (joining a cgroup)
	VS_CAPBSET,      // drop every capability not in mask n[0] from the bounding set
	VS_SETGROUPS,    // setgroups(n[0], gids)
	VS_SETRESGID,    // setresgid(n[0], n[0], n[0])
	VS_SETRESUID,    // setresuid(n[0], n[0], n[0])
	VS_CAPSET,       // effective and permitted capabilities n[0], inheritable none
	VS_PDEATHSIG,    // prctl(PR_SET_PDEATHSIG, n[0])
	VS_UMASK,        // umask(n[0])
	VS_READY,        // report VS_R_READY, then wait for the parent's go-ahead
	VS_CLONE_PARENT, // fork a sibling (CLONE_PARENT) that runs the rest; exit
	VS_EXEC,         // execve(s[0], argv, envp); envp[n[0]] gets HOSTNAME if n[0] >= 0
};

// The op may find its path missing: then it does nothing.
#define VS_OK_ENOENT 1

struct vs_op {
	int32_t code; // enum vs_opcode
	int32_t flags;
	const char *s[4];
	int64_t n[3];
	const uint32_t *gids; // VS_SETGROUPS
	char *const *argv;    // VS_EXEC
	char *const *envp;    // VS_EXEC
};

struct vs_prog {
	const struct vs_op *ops;
	int32_t nops;
	int32_t clone_flags; // namespaces to create (CLONE_NEW*)
	int32_t sync_fd;     // the child's end of the sync socket
	int32_t nkeep;
	const int32_t *keep; // descriptors above 2 the child keeps, ascending
	// Written by the kernel (CLONE_PARENT_SETTID): the pids, in the
	// caller's PID namespace, of the child and of a VS_CLONE_PARENT sibling.
	volatile int32_t tid[2];
	// Set by vs_spawn: the sibling's stack.
	char *stack2;
};

// What the child says on the sync socket, one record per message.
enum vs_report_kind {
	VS_R_READY = 1, // pid: the child's pid in the caller's PID namespace
	VS_R_PTY,       // a terminal's master comes with the message
	VS_R_ERROR,     // op step failed with errno err; the child exits
};

struct vs_report {
	int32_t kind;
	int32_t step;
	int32_t err;
	int32_t pid;
};

// vs_spawn starts the child running p and returns its pid once it has
// execve'd or exited, or -errno if it could not be started.
int vs_spawn(struct vs_prog *p);

// vs_child is the child's entry point (child.c).
int vs_child(void *p);

#endif
