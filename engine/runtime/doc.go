// Package runtime runs containers: it owns the container's processes, its root
// filesystem and exec into it. It is the engine's runc.
//
// A container's init is vscript itself, re-exec'd as the helper
// "container-init" in new PID, mount, UTS, IPC (and usually network)
// namespaces. It reads its configuration from a pipe, builds the root
// filesystem the way runc does (overlay, bind mounts, /proc, a minimal /dev,
// read-only /sys, pivot_root, masked paths), resolves the user in the
// container's /etc/passwd, drops to Docker's default capabilities, looks the
// command up, reports "ready" over a socket and waits. Create returns at that
// point, so the caller can move a veth into the new network namespace by pid;
// Start puts init into the container's cgroups and lets it execve the user's
// command, which becomes PID 1. All mounts live in the container's mount
// namespace only, so they vanish with its last process.
//
// Exec joins every namespace of a running container. A Go process cannot
// setns into a mount namespace (it is multithreaded from the start), so a
// small cgo constructor (nsenter.c) does the setns calls before the Go
// runtime starts, as runc's nsexec does, and forks the process that runs the
// "container-exec" helper inside.
//
// Binaries that link this package must hand re-exec'd helpers to
// reexec.Init first thing in main (and in TestMain). Each container start
// and each exec pays one start of that binary, package initialisation
// included, so vscript's packages should keep their init work small.
//
// Resource limits go through cgroups (v2 when /sys/fs/cgroup is cgroup2, else
// v1), under vscript/<ID> at the root of each hierarchy, as Docker's cgroupfs
// driver does. The package emits no events; Spec.Explain returns the Linux
// commands a container amounts to, for the caller to report.
package runtime
