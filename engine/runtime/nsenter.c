//go:build cgo

// Joining a mount namespace needs a single-threaded process, and a Go
// process never is: this constructor runs before the Go runtime starts, as
// runc's nsexec does. It is a no-op unless _VSCRIPT_NSENTER names a pid.
//
// It joins the ipc, uts, net, pid and mnt namespaces of that pid, then forks
// with CLONE_PARENT: the child is inside the PID namespace (setns on a pid
// namespace only applies to children) and is a child of our parent, which
// can wait for it and signal it directly. We write the child's pid to the
// sync socket (_VSCRIPT_SYNCPIPE) and exit; the child goes on to start Go and
// runs the container-exec helper. Errors go to the sync socket as the same
// JSON messages the Go side uses.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(int sync, const char *msg) {
	if (write(sync, msg, strlen(msg)) < 0) {
		// Nobody to tell: our parent sees us exit without a pid.
	}
}

static void fail(int sync, const char *what, int err) {
	char msg[512];
	snprintf(msg, sizeof msg, "{\"type\":\"error\",\"error\":\"join namespaces: %s: %s\"}", what, strerror(err));
	report(sync, msg);
	_exit(1);
}

__attribute__((constructor)) static void vscript_nsenter(void) {
	const char *target = getenv("_VSCRIPT_NSENTER"); // a pid, set by Exec
	if (target == NULL) {
		return;
	}
	const char *syncfd = getenv("_VSCRIPT_SYNCPIPE");
	int sync = syncfd ? atoi(syncfd) : 2;

	// Open them all first: once in the new mount namespace, /proc is the
	// container's and the pid means nothing there.
	static const char *names[] = {"ipc", "uts", "net", "pid", "mnt"};
	int fds[5];
	char path[64];
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "/proc/%s/ns/%s", target, names[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			fail(sync, path, errno);
		}
	}
	for (int i = 0; i < 5; i++) {
		if (setns(fds[i], 0) < 0) {
			int err = errno;
			snprintf(path, sizeof path, "setns %s", names[i]);
			fail(sync, path, err);
		}
		close(fds[i]);
	}

	// fork() cannot take CLONE_PARENT. A raw clone without CLONE_VM or a new
	// stack behaves like fork; runc's clone_parent does the same.
	pid_t pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0) {
		fail(sync, "clone", errno);
	}
	if (pid == 0) {
		return; // inside: on to the Go runtime
	}
	char msg[64];
	snprintf(msg, sizeof msg, "{\"type\":\"pid\",\"pid\":%d}", (int)pid);
	report(sync, msg);
	_exit(0);
}
