package runtime

/*
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "spawn.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"syscall"
	"unsafe"
)

// op is one step of the program a container's first process runs between
// clone and execve (spawn.h lists the codes and what each field means).
type op struct {
	code  C.int32_t
	flags C.int32_t
	s     [4]string // "" is passed as NULL
	n     [3]int64
	gids  []uint32 // VS_SETGROUPS
	argv  []string // VS_EXEC
	envp  []string // VS_EXEC
	// desc names the step in an error: "mount proc on /proc".
	desc string
}

// The ops, with the names errors give them.

func mountOp(desc, src, dst, fstype string, flags uintptr, data string) op {
	return op{code: C.VS_MOUNT, s: [4]string{src, dst, fstype, data}, n: [3]int64{int64(flags)}, desc: desc}
}

func remountReadOnlyOp(desc, dst string) op {
	return op{code: C.VS_REMOUNT_RO, s: [4]string{dst}, desc: desc}
}

func mkdirOp(dir string, mode uint32, desc string) op {
	return op{code: C.VS_MKDIR, s: [4]string{dir}, n: [3]int64{int64(mode)}, desc: desc}
}

func mkfileOp(file string, desc string) op {
	return op{code: C.VS_MKFILE, s: [4]string{file}, n: [3]int64{0o644}, desc: desc}
}

func chdirOp(dir, desc string) op {
	return op{code: C.VS_CHDIR, s: [4]string{dir}, desc: desc}
}

func setnsOp(fd int, nstype int, desc string) op {
	return op{code: C.VS_SETNS, n: [3]int64{int64(fd), int64(nstype)}, desc: desc}
}

func simpleOp(code C.int32_t, desc string) op { return op{code: code, desc: desc} }

func numOp(code C.int32_t, n int64, desc string) op {
	return op{code: code, n: [3]int64{n}, desc: desc}
}

// ttyOps opens a terminal in the container's devpts, makes it the
// controlling terminal and stdio of the process and hands its master to the
// parent; with console, it is also bound over /dev/console, as runc does.
// The process must be a session leader.
func ttyOps(console bool) []op {
	ops := []op{simpleOp(C.VS_PTY_OPEN, "open terminal")}
	if console {
		ops = append(ops, simpleOp(C.VS_PTY_CONSOLE, "bind /dev/console"))
	}
	return append(ops,
		simpleOp(C.VS_PTY_STDIO, "set controlling terminal"),
		simpleOp(C.VS_PTY_SEND, "send terminal"))
}

func stdioOp(fds [3]int) op {
	return op{code: C.VS_STDIO, n: [3]int64{int64(fds[0]), int64(fds[1]), int64(fds[2])}, desc: "set up stdio"}
}

// credentialOps switch to the user with Docker's capabilities: the bounding
// set is cut to the default set; root keeps that as its effective and
// permitted set, any other uid ends with none (the kernel clears them on the
// uid change).
func credentialOps(uid, gid int, groups []int) []op {
	gids := make([]uint32, len(groups))
	for i, g := range groups {
		gids[i] = uint32(g)
	}
	ops := []op{
		numOp(C.VS_CAPBSET, int64(dockerCapMask()), "drop capability bounding set"),
		{code: C.VS_SETGROUPS, n: [3]int64{int64(len(gids))}, gids: gids, desc: "setgroups"},
		numOp(C.VS_SETRESGID, int64(gid), "setgid"),
		numOp(C.VS_SETRESUID, int64(uid), "setuid"),
	}
	if uid == 0 {
		ops = append(ops, numOp(C.VS_CAPSET, int64(dockerCapMask()), "capset"))
	}
	return ops
}

// hostnameSlot stands for HOSTNAME in an environment built before the
// container's hostname is known; the child fills it in from uname.
const hostnameSlot = "\x00"

// execOp runs the command; path is what the lookup found.
func execOp(path string, args, env []string) op {
	o := op{code: C.VS_EXEC, s: [4]string{path}, argv: args, envp: env, n: [3]int64{-1}, desc: "exec " + path}
	for i, kv := range env {
		if kv == "HOSTNAME="+hostnameSlot {
			o.n[0], o.n[1] = int64(i), int64(len("HOSTNAME="))+C.HOST_NAME_MAX+1
		}
	}
	return o
}

// program is a list of ops compiled into C memory for vs_spawn.
type program struct {
	ops    []op
	prog   *C.struct_vs_prog
	allocs []unsafe.Pointer
}

// compile writes ops into C memory. The child keeps syncFD and the
// descriptors in keep (above 2) and closes every other one it inherited.
func compile(ops []op, cloneFlags uintptr, syncFD int, keep []int) *program {
	p := &program{ops: ops}
	p.prog = (*C.struct_vs_prog)(p.alloc(C.sizeof_struct_vs_prog))
	cops := unsafe.Slice((*C.struct_vs_op)(p.alloc(C.size_t(len(ops))*C.sizeof_struct_vs_op)), len(ops))
	for i, o := range ops {
		c := &cops[i]
		c.code, c.flags = o.code, o.flags
		for j, s := range o.s {
			c.s[j] = p.str(s, 0)
		}
		for j, n := range o.n {
			c.n[j] = C.int64_t(n)
		}
		if len(o.gids) > 0 {
			g := unsafe.Slice((*C.uint32_t)(p.alloc(C.size_t(4*len(o.gids)))), len(o.gids))
			for j, id := range o.gids {
				g[j] = C.uint32_t(id)
			}
			c.gids = &g[0]
		}
		if o.code == C.VS_EXEC {
			c.argv = p.strv(o.argv, -1, 0)
			c.envp = p.strv(o.envp, int(o.n[0]), int(o.n[1]))
		}
	}

	fds := append([]int{syncFD}, keep...)
	sort.Ints(fds)
	ckeep := unsafe.Slice((*C.int32_t)(p.alloc(C.size_t(4*len(fds)))), len(fds))
	for i, fd := range fds {
		ckeep[i] = C.int32_t(fd)
	}
	p.prog.ops = &cops[0]
	p.prog.nops = C.int32_t(len(ops))
	p.prog.clone_flags = C.int32_t(cloneFlags)
	p.prog.sync_fd = C.int32_t(syncFD)
	p.prog.nkeep = C.int32_t(len(fds))
	p.prog.keep = &ckeep[0]
	return p
}

// alloc returns zeroed C memory that lives until free.
func (p *program) alloc(size C.size_t) unsafe.Pointer {
	m := C.malloc(size) // cgo's malloc never returns nil
	C.memset(m, 0, size)
	p.allocs = append(p.allocs, m)
	return m
}

// str copies s into C memory with room for at least size bytes in all.
func (p *program) str(s string, size int) *C.char {
	if s == "" && size == 0 {
		return nil
	}
	size = max(size, len(s)+1)
	m := p.alloc(C.size_t(size))
	copy(unsafe.Slice((*byte)(m), size), s)
	return (*C.char)(m)
}

// strv makes a NULL-terminated array of strings; entry slot gets size bytes.
func (p *program) strv(v []string, slot, size int) **C.char {
	arr := unsafe.Slice((**C.char)(p.alloc(C.size_t(len(v)+1)*C.size_t(unsafe.Sizeof((*C.char)(nil))))), len(v)+1)
	for i, s := range v {
		n := len(s) + 1
		if i == slot {
			n = size
		}
		arr[i] = p.str(s, n)
	}
	return &arr[0]
}

// spawn starts the child and returns its pid once it has execve'd or exited
// (the calling thread sleeps until then).
func (p *program) spawn() (int, error) {
	pid := C.vs_spawn(p.prog)
	if pid < 0 {
		return 0, syscall.Errno(-pid)
	}
	return int(pid), nil
}

// siblingPid is the pid of the process VS_CLONE_PARENT made, 0 if none.
func (p *program) siblingPid() int { return int(p.prog.tid[1]) }

// free releases the C memory; call it once spawn has returned.
func (p *program) free() {
	for _, m := range p.allocs {
		C.free(m)
	}
	p.allocs, p.prog = nil, nil
}

// Report kinds on the sync socket (spawn.h).
const (
	reportReady = C.VS_R_READY
	reportPty   = C.VS_R_PTY
	reportError = C.VS_R_ERROR
)

// report is one record the child sent.
type report struct {
	kind, step, errno, pid int32
}

const reportSize = C.sizeof_struct_vs_report

// err turns the child's error report into the error of the step that failed:
// a *CommandError for execve, otherwise "desc: errno".
func (p *program) err(r report) error {
	errno := syscall.Errno(r.errno)
	if r.step < 0 || int(r.step) >= len(p.ops) {
		return fmt.Errorf("step %d: %w", r.step, errno)
	}
	o := p.ops[r.step]
	if o.code == C.VS_EXEC {
		return commandError(fmt.Errorf("%s: %w", o.desc, errno))
	}
	return &opError{o.desc, errno}
}
