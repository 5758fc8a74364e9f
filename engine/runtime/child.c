// The container's first process, from clone to execve.
//
// It runs the steps Go prepared (program.go) one after the other and stops
// at the first that fails, telling the parent which step and errno over the
// sync socket. Success is silent: the socket is close-on-exec, so the parent
// reads end-of-file once execve has worked.
//
// The child shares the Go process's memory until execve (see spawn.c). It
// therefore calls only functions that are plain system calls, allocates
// nothing, and writes only to its own stack and to the buffers Go gave it.
// Credentials are changed with raw syscalls: glibc's setuid and friends
// would try to change them in every thread they know of, which here are the
// Go process's.

#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// report sends one record to the parent, with a descriptor if fd >= 0.
static int report(const struct vs_prog *p, int kind, int step, int err, int pid, int fd) {
	struct vs_report r = {.kind = kind, .step = step, .err = err, .pid = pid};
	struct iovec iov = {.iov_base = &r, .iov_len = sizeof r};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&control, 0, sizeof control);
		m.msg_control = control.buf;
		m.msg_controllen = sizeof control.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	ssize_t n;
	while ((n = sendmsg(p->sync_fd, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n < 0 ? -1 : 0;
}

static _Noreturn void fail(const struct vs_prog *p, int step, int err, int status) {
	report(p, VS_R_ERROR, step, err, 0, -1);
	_exit(status);
}

// reset_signals gives every signal its default action. Dispositions are the
// child's own (no CLONE_SIGHAND), copied from Go's; an ignored signal would
// stay ignored across execve, a handled one would run Go code here.
static void reset_signals(void) {
	// The kernel's struct sigaction; SIG_DFL is all zeros.
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		uint64_t mask;
	} dfl;
	memset(&dfl, 0, sizeof dfl);
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
}

// close_others closes every descriptor above stderr that the program does
// not use. The child inherited all of the Go process's: without this, a
// container created and not yet started would hold, say, the pipe of some
// other container's output open, and its reader would never see the end.
static void close_others(const struct vs_prog *p) {
	unsigned int next = 3;
	for (int i = 0; i < p->nkeep; i++) {
		unsigned int fd = (unsigned int)p->keep[i];
		if (fd > next)
			syscall(SYS_close_range, next, fd - 1, 0);
		if (fd >= next)
			next = fd + 1;
	}
	syscall(SYS_close_range, next, ~0U, 0);
}

// above_stdio moves fd above 2, so that installing stdio cannot clobber it.
static int above_stdio(int fd) {
	if (fd < 0 || fd > 2)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return moved;
}

static int remount_ro(const char *path, unsigned long flags) {
	// A bind remount sets all per-mount flags at once: repeat those the
	// mount has, or they would be cleared.
	static const struct {
		unsigned long st, ms;
	} keep[] = {
	    {ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},         {ST_NOEXEC, MS_NOEXEC},
	    {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
	};
	struct statfs st;
	if (statfs(path, &st) < 0)
		return -1;
	flags |= MS_BIND | MS_REMOUNT | MS_RDONLY;
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
		if ((unsigned long)st.f_flags & keep[i].st)
			flags |= keep[i].ms;
	return mount(NULL, path, NULL, flags, NULL);
}

static int lo_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", 3);
	int r = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	int err = errno;
	close(s);
	errno = err;
	return r;
}

// A terminal being set up: the master goes to the parent, the slave becomes
// the process's stdio.
struct tty {
	int master, slave;
	unsigned int n; // /dev/pts/<n>
};

static int pty_open(struct tty *t) {
	// The container's own devpts instance: /dev/ptmx is a link to it.
	t->master = above_stdio(open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (t->master < 0)
		return -1;
	int unlock = 0;
	if (ioctl(t->master, TIOCSPTLCK, &unlock) < 0 || ioctl(t->master, TIOCGPTN, &t->n) < 0)
		return -1;
	t->slave = above_stdio(ioctl(t->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
	return t->slave < 0 ? -1 : 0;
}

// pty_console binds the terminal over /dev/console, as runc does.
static int pty_console(const struct tty *t) {
	char path[32] = "/dev/pts/";
	char digits[12];
	int len = 0;
	unsigned int n = t->n;
	do {
		digits[len++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	char *end = path + strlen(path);
	while (len > 0)
		*end++ = digits[--len];
	*end = '\0';

	int fd = open("/dev/console", O_CREAT | O_RDONLY | O_NOCTTY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return mount(path, "/dev/console", NULL, MS_BIND, NULL);
}

static int pty_stdio(struct tty *t) {
	if (ioctl(t->slave, TIOCSCTTY, 0) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (dup2(t->slave, i) < 0)
			return -1;
	close(t->slave);
	t->slave = -1;
	return 0;
}

static int install_stdio(const int64_t fds[3]) {
	int from[3];
	for (int i = 0; i < 3; i++) {
		from[i] = (int)fds[i];
		// A source among 0-2 might be overwritten by an earlier dup2.
		if (from[i] < 3 && (from[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 3)) < 0)
			return -1;
	}
	for (int i = 0; i < 3; i++)
		if (dup2(from[i], i) < 0)
			return -1;
	// Hold the streams only as 0-2 from here on (stdout and stderr may
	// share a source: close it once).
	for (int i = 0; i < 3; i++) {
		int seen = 0;
		for (int j = 0; j < i; j++)
			seen |= from[j] == from[i];
		if (!seen)
			close(from[i]);
	}
	return 0;
}

static int drop_bounding_set(uint64_t keep) {
	for (int c = 0; c < 64; c++) {
		if (keep & ((uint64_t)1 << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				return 0; // past the kernel's last capability
			return -1;
		}
	}
	return 0;
}

static int set_caps(uint64_t caps) {
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {
	    {.effective = (uint32_t)caps, .permitted = (uint32_t)caps},
	    {.effective = (uint32_t)(caps >> 32), .permitted = (uint32_t)(caps >> 32)},
	};
	return (int)syscall(SYS_capset, &h, d);
}

// ready tells the parent the container is set up and waits for its word to
// run the command; the parent closing its end means it has given up on us.
static int ready(const struct vs_prog *p) {
	if (report(p, VS_R_READY, 0, 0, p->tid[0], -1) < 0)
		return -1;
	char go;
	ssize_t n;
	while ((n = read(p->sync_fd, &go, 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		_exit(0);
	return 0;
}

static int exec_command(const struct vs_op *op) {
	if (op->n[0] >= 0) {
		// HOSTNAME as the container's UTS namespace has it (an exec'd
		// process's env), into the slot Go sized for it.
		struct utsname u;
		if (uname(&u) < 0)
			return -1;
		char *dst = op->envp[op->n[0]];
		size_t room = (size_t)op->n[1];
		size_t len = strlen("HOSTNAME=");
		memcpy(dst, "HOSTNAME=", len);
		for (const char *s = u.nodename; *s && len + 1 < room; s++)
			dst[len++] = *s;
		dst[len] = '\0';
	}
	syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
	uint64_t none = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
	execve(op->s[0], op->argv, op->envp);
	return -1;
}

static _Noreturn void run(struct vs_prog *p, int first);

struct sibling {
	struct vs_prog *p;
	int first;
};

static int sibling_main(void *arg) {
	struct sibling *s = arg;
	run(s->p, s->first);
}

// fork_sibling starts the rest of the program in a new process that is the
// Go process's own child (CLONE_PARENT) and, unlike us, inside the PID
// namespace we joined. We wait (CLONE_VFORK) until it has execve'd or died,
// then exit: by then the kernel has written its pid into p->tid[1].
static _Noreturn void fork_sibling(struct vs_prog *p, int step) {
	struct sibling s = {.p = p, .first = step + 1};
	int flags = CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_PARENT_SETTID | SIGCHLD;
	if (clone(sibling_main, p->stack2, flags, &s, (pid_t *)&p->tid[1]) < 0)
		fail(p, step, errno, 1);
	_exit(0);
}

// step runs one op; it returns -1 with errno set if the op failed.
static int step(struct vs_prog *p, int i, struct tty *t) {
	const struct vs_op *op = &p->ops[i];
	const int64_t *n = op->n;
	switch (op->code) {
	case VS_MOUNT:
		return mount(op->s[0], op->s[1], op->s[2], (unsigned long)n[0], op->s[3]);
	case VS_REMOUNT_RO:
		return remount_ro(op->s[0], (unsigned long)n[0]);
	case VS_UMOUNT:
		return umount2(op->s[0], (int)n[0]);
	case VS_MKDIR:
		if (mkdir(op->s[0], (mode_t)n[0]) < 0 && errno != EEXIST)
			return -1;
		return 0;
	case VS_MKFILE: {
		int fd = open(op->s[0], O_CREAT | O_RDONLY | O_NOCTTY | O_CLOEXEC, (mode_t)n[0]);
		if (fd < 0)
			return -1;
		return close(fd);
	}
	case VS_MKNOD:
		return mknod(op->s[0], (mode_t)n[0], (dev_t)n[1]);
	case VS_SYMLINK:
		return symlink(op->s[0], op->s[1]);
	case VS_CHDIR:
		return chdir(op->s[0]);
	case VS_PIVOT_ROOT:
		return (int)syscall(SYS_pivot_root, op->s[0], op->s[1]);
	case VS_SETNS:
		return setns((int)n[0], (int)n[1]);
	case VS_SETHOSTNAME:
		return sethostname(op->s[0], strlen(op->s[0]));
	case VS_LO_UP:
		return lo_up();
	case VS_SETSID:
		return setsid() < 0 ? -1 : 0;
	case VS_PTY_OPEN:
		return pty_open(t);
	case VS_PTY_CONSOLE:
		return pty_console(t);
	case VS_PTY_STDIO:
		return pty_stdio(t);
	case VS_PTY_SEND:
		if (report(p, VS_R_PTY, i, 0, 0, t->master) < 0)
			return -1;
		close(t->master);
		t->master = -1;
		return 0;
	case VS_STDIO:
		return install_stdio(n);
	case VS_WRITE: {
		size_t len = strlen(op->s[0]);
		ssize_t w = write((int)n[0], op->s[0], len);
		if (w >= 0 && (size_t)w != len)
			errno = EIO;
		return (size_t)w == len ? 0 : -1;
	}
	case VS_CAPBSET:
		return drop_bounding_set((uint64_t)n[0]);
	case VS_SETGROUPS:
		return (int)syscall(SYS_setgroups, (size_t)n[0], op->gids);
	case VS_SETRESGID:
		return (int)syscall(SYS_setresgid, n[0], n[0], n[0]);
	case VS_SETRESUID:
		return (int)syscall(SYS_setresuid, n[0], n[0], n[0]);
	case VS_CAPSET:
		return set_caps((uint64_t)n[0]);
	case VS_PDEATHSIG:
		return prctl(PR_SET_PDEATHSIG, (unsigned long)n[0], 0, 0, 0);
	case VS_UMASK:
		umask((mode_t)n[0]);
		return 0;
	case VS_READY:
		return ready(p);
	case VS_CLONE_PARENT:
		fork_sibling(p, i);
	case VS_EXEC:
		return exec_command(op);
	}
	errno = EINVAL;
	return -1;
}

static _Noreturn void run(struct vs_prog *p, int first) {
	struct tty t = {.master = -1, .slave = -1};
	for (int i = first; i < p->nops; i++) {
		if (step(p, i, &t) == 0)
			continue;
		int err = errno;
		if (err == ENOENT && (p->ops[i].flags & VS_OK_ENOENT))
			continue;
		// Docker's exit codes for a command that cannot run.
		int status = 1;
		if (p->ops[i].code == VS_EXEC)
			status = err == ENOENT ? 127 : 126;
		fail(p, i, err, status);
	}
	fail(p, p->nops, EINVAL, 1); // a program ends with VS_EXEC
}

int vs_child(void *arg) {
	struct vs_prog *p = arg;
	reset_signals();
	close_others(p);
	run(p, 0);
}
