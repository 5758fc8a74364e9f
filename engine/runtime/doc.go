// Package runtime runs containers: it owns the container's processes, its root
// filesystem and exec into it. It is the engine's runc.
//
// Nothing of vscript runs inside a container. Create does in Go, from
// outside, all that can fail for a reason the user should hear about: it
// resolves paths in the root filesystem the caller has mounted (with the
// container's mounts laid over it, symlinks kept inside), makes the
// mountpoints, reads the container's /etc/passwd and /etc/group for the
// user, looks the command up in the container's PATH (so "not found" is exit
// code 127 and "cannot run" 126 before anything starts) and builds the
// environment. It then writes a flat program of system calls into C memory:
// the mounts (proc, a minimal /dev, read-only /sys, the binds, the Etc files),
// pivot_root, masked and read-only /proc paths, the hostname, the user's
// credentials and Docker's default capabilities, then execve.
//
// One cgo call (spawn.c) clones a child into new PID, mount, UTS, IPC (and
// usually network) namespaces, and the child, plain single-threaded C with
// no allocation (child.c), runs that program. It reports a failing step's
// index and errno on a socket, which Go turns into the same errors as
// before ("mount proc on /proc: ..."). When set up it says "ready" and waits:
// Create returns, so the caller can move a veth into the new network
// namespace by pid; Start puts it into the container's cgroups and lets it
// execve the command, which is PID 1. All mounts live in the container's
// mount namespace only, so they vanish with its last process.
//
// The child is cloned with CLONE_VM|CLONE_VFORK, sharing the Go process's
// memory until execve, as posix_spawn does: a plain fork of a Go process
// copies its page tables and then pays a copy-on-write fault per page
// touched on both sides, which costs more than everything else here. The
// rules that come with it are spelled out in spawn.c and child.c.
//
// Exec joins every namespace of a running container. A Go process cannot
// setns into a mount namespace (it is multithreaded from the start), but the
// cloned child can: it joins the namespaces of the container's PID 1, then
// forks with CLONE_PARENT the process that execve's the command, which is so
// inside the PID namespace and a child of the caller. The user and the
// command are resolved beforehand through /proc/PID/root.
//
// Resource limits go through cgroups (v2 when /sys/fs/cgroup is cgroup2, else
// v1), under vscript/<ID> at the root of each hierarchy, as Docker's cgroupfs
// driver does. The package emits no events; Spec.Explain returns the Linux
// commands a container amounts to, for the caller to report.
package runtime
