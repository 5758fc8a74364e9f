package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"vscript/engine/errdefs"
)

// cgroupRoot is where the cgroup hierarchies are mounted. Containers get
// cgroupRoot/<controller>/vscript/<ID> on v1, cgroupRoot/vscript/<ID> on v2,
// at the root of each hierarchy as Docker's cgroupfs driver does.
const (
	cgroupRoot   = "/sys/fs/cgroup"
	cgroupParent = "vscript"
)

var cgroupV2 = sync.OnceValue(func() bool {
	var st unix.Statfs_t
	return unix.Statfs(cgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
})

// cgroupWrite is one value to write into a controller's file.
type cgroupWrite struct {
	ctrl, file, value string
	// optional files exist only on some kernels (swap accounting).
	optional bool
}

// writes returns the cgroup files Docker would set for r.
func (r Resources) writes(v2 bool) []cgroupWrite {
	var w []cgroupWrite
	if r.Memory > 0 {
		mem := strconv.FormatInt(r.Memory, 10)
		if v2 {
			// Docker's default --memory-swap is twice --memory: as much swap again.
			w = append(w, cgroupWrite{"memory", "memory.max", mem, false},
				cgroupWrite{"memory", "memory.swap.max", mem, true})
		} else {
			w = append(w, cgroupWrite{"memory", "memory.limit_in_bytes", mem, false},
				cgroupWrite{"memory", "memory.memsw.limit_in_bytes", strconv.FormatInt(2*r.Memory, 10), true})
		}
	}
	if r.PidsLimit > 0 {
		w = append(w, cgroupWrite{"pids", "pids.max", strconv.FormatInt(r.PidsLimit, 10), false})
	}
	if r.CPUs > 0 {
		quota := strconv.FormatInt(int64(r.CPUs*100000), 10)
		if v2 {
			w = append(w, cgroupWrite{"cpu", "cpu.max", quota + " 100000", false})
		} else {
			w = append(w, cgroupWrite{"cpu", "cpu.cfs_period_us", "100000", false},
				cgroupWrite{"cpu", "cpu.cfs_quota_us", quota, false})
		}
	}
	return w
}

// allowedDevices are Docker's default device cgroup rules: make any node,
// open only null, zero, full, random, urandom, tty, ptmx, the pts, tun.
var allowedDevices = []string{
	"c *:* m", "b *:* m",
	"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
	"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
}

// The devices cgroup is the process's, not each container's: Docker's rules
// are the same for every container, and one cgroup made once per lab spares
// every start a mkdir, thirteen writes and an rmdir (0.5 ms a container).
// CAP_MKNOD lets a container make any device node; the rules let it open
// only its own /dev's. (cgroup v2 needs an eBPF program for this; not done.)
var devices struct {
	sync.Mutex
	dir  string   // made on first use
	lock *os.File // flock'ed while dir exists, against CleanupCgroups
	refs int      // containers created and not yet destroyed
}

// devicesName names this process's devices cgroup: random, as the labs
// running at once each have theirs.
var devicesName = sync.OnceValue(func() string {
	return fmt.Sprintf("lab-%08x", rand.Uint32()) // a name, not a secret: see engine.randomHex
})

// devicesDir returns the devices cgroup dir for id's cgroupExplain.
func devicesDir() string {
	return filepath.Join(cgroupRoot, "devices", cgroupParent, devicesName())
}

// acquireDevices returns the shared devices cgroup, made and set up on
// first use, or "" where there is no v1 devices controller. Every acquire
// is matched by a releaseDevices.
func acquireDevices() (string, error) {
	if cgroupV2() || !devicesCgroup() {
		return "", nil
	}
	devices.Lock()
	defer devices.Unlock()
	if devices.dir == "" {
		cg := &cgroup{id: devicesName()}
		dir := devicesDir()
		if err := cg.mkdir(dir); err != nil {
			cg.remove()
			return "", fmt.Errorf("cgroup %s: devices: %w", cg.id, err)
		}
		for i, rule := range append([]string{"a"}, allowedDevices...) {
			file := "devices.allow"
			if i == 0 {
				file = "devices.deny"
			}
			if err := os.WriteFile(filepath.Join(dir, file), []byte(rule), 0); err != nil {
				cg.remove()
				return "", fmt.Errorf("cgroup %s: devices: write %s %s: %w", cg.id, file, rule, err)
			}
		}
		devices.dir, devices.lock = dir, cg.locks[0]
	}
	devices.refs++
	return devices.dir, nil
}

func releaseDevices() {
	devices.Lock()
	devices.refs--
	devices.Unlock()
}

// ReleaseCgroups removes the process's devices cgroup if no container uses
// it any more; if one does, the next lab's CleanupCgroups removes it. The
// next container makes it again.
func ReleaseCgroups() error {
	devices.Lock()
	defer devices.Unlock()
	if devices.dir == "" || devices.refs > 0 {
		return nil
	}
	if err := unix.Rmdir(devices.dir); err != nil && err != unix.ENOENT {
		return fmt.Errorf("cgroup %s: remove %s: %w", devicesName(), devices.dir, err)
	}
	devices.lock.Close()
	devices.dir, devices.lock = "", nil
	return nil
}

// devicesCgroup reports whether the v1 devices controller is mounted.
var devicesCgroup = sync.OnceValue(func() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "devices", "devices.allow"))
	return err == nil
})

// validate checks r as Docker's daemon does.
func (r Resources) validate(id string) error {
	bad := func(ctrl, format string, a ...any) error {
		return fmt.Errorf("cgroup %s: %s: %s: %w", id, ctrl, fmt.Sprintf(format, a...), errdefs.ErrInvalid)
	}
	if r.Memory < 0 {
		return bad("memory", "negative limit %d", r.Memory)
	}
	if r.Memory > 0 && r.Memory < 6<<20 {
		return bad("memory", "minimum memory limit allowed is 6MB")
	}
	if n := goruntime.NumCPU(); r.CPUs < 0 || r.CPUs > float64(n) || (r.CPUs > 0 && r.CPUs < 0.01) {
		return bad("cpu", "range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
	}
	return nil
}

// cgroup is a container's set of cgroup directories; nil when it has no limits.
//
// A container's cgroups hold no process until Start, so each directory is
// also flock'ed while the container exists: CleanupCgroups, perhaps run by
// another vscript, removes only those nobody holds.
type cgroup struct {
	id      string
	dirs    []string
	locks   []*os.File
	devices string // the shared devices cgroup, acquired
}

// mkdir creates and locks a cgroup directory.
//
// CleanupCgroups, perhaps run by a lab starting beside this one, removes
// every unlocked directory. It holds its parent's lock exclusively while it
// does; the new directory is made and locked under a shared lock of the
// parent, so a cleanup never sees it unlocked.
func (cg *cgroup) mkdir(dir string) error {
	parent, err := lockParent(filepath.Dir(dir), unix.LOCK_SH)
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	cg.dirs = append(cg.dirs, dir)
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	cg.locks = append(cg.locks, f)
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}

// lockParent makes the vscript directory of a hierarchy if need be and
// returns it open and flock'ed with how (shared or exclusive). It is never
// removed, so its lock orders the making and the cleaning of containers'.
func lockParent(dir string, how int) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// newCgroup creates the directories for r's limits and writes them, and
// acquires the shared devices cgroup. On error it leaves nothing behind.
func newCgroup(id string, r Resources) (*cgroup, error) {
	v2 := cgroupV2()
	writes := r.writes(v2)
	devs, err := acquireDevices()
	if err != nil {
		return nil, err
	}
	if len(writes) == 0 && devs == "" {
		return nil, nil
	}
	cg := &cgroup{id: id, devices: devs}
	fail := func(ctrl string, err error) (*cgroup, error) {
		cg.remove()
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrConflict)
		}
		return nil, fmt.Errorf("cgroup %s: %s: %w", id, ctrl, err)
	}
	dirOf := map[string]string{}
	if v2 && len(writes) > 0 {
		var ctrls []string
		for _, w := range writes {
			if len(ctrls) == 0 || ctrls[len(ctrls)-1] != w.ctrl {
				ctrls = append(ctrls, w.ctrl)
			}
		}
		parent := filepath.Join(cgroupRoot, cgroupParent)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fail(ctrls[0], err)
		}
		for _, p := range []string{cgroupRoot, parent} {
			for _, c := range ctrls {
				if err := os.WriteFile(filepath.Join(p, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
					return fail(c, fmt.Errorf("enable controller in %s: %w", p, err))
				}
			}
		}
		dir := filepath.Join(parent, id)
		if err := cg.mkdir(dir); err != nil {
			return fail(ctrls[0], err)
		}
		for _, c := range ctrls {
			dirOf[c] = dir
		}
	}
	for _, w := range writes {
		dir, ok := dirOf[w.ctrl]
		if !ok {
			dir = filepath.Join(cgroupRoot, w.ctrl, cgroupParent, id)
			if err := cg.mkdir(dir); err != nil {
				return fail(w.ctrl, err)
			}
			dirOf[w.ctrl] = dir
		}
		err := os.WriteFile(filepath.Join(dir, w.file), []byte(w.value), 0)
		if err != nil && !(w.optional && errors.Is(err, fs.ErrNotExist)) {
			return fail(w.ctrl, fmt.Errorf("write %s %s: %w", w.file, w.value, err))
		}
	}
	return cg, nil
}

// add moves pid (and all its threads) into the container's cgroups.
func (cg *cgroup) add(pid int) error {
	if cg == nil {
		return nil
	}
	dirs := cg.dirs
	if cg.devices != "" {
		dirs = append(dirs[:len(dirs):len(dirs)], cg.devices)
	}
	if err := addToCgroups(dirs, pid); err != nil {
		return fmt.Errorf("cgroup %s: %w", cg.id, err)
	}
	return nil
}

// remove deletes the directories; their processes must be gone.
func (cg *cgroup) remove() error {
	if cg == nil {
		return nil
	}
	var errs []error
	for _, dir := range cg.dirs {
		if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("cgroup %s: remove %s: %w", cg.id, dir, err))
		}
	}
	for _, f := range cg.locks {
		f.Close()
	}
	if cg.devices != "" {
		releaseDevices()
	}
	cg.dirs, cg.locks, cg.devices = nil, nil, ""
	return errors.Join(errs...)
}

// cgroupsOf returns the vscript cgroup directories pid is in: those an
// exec'd process must join to count against its container's limits.
func cgroupsOf(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("cgroups of %d: %w", pid, err)
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controllers:path; v2 is "0::path"
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/"+cgroupParent+"/") {
			continue
		}
		if parts[1] == "" && !cgroupV2() {
			continue // the v2 hierarchy of a hybrid system holds no limits of ours
		}
		dirs = append(dirs, filepath.Join(cgroupRoot, parts[1], parts[2]))
	}
	return dirs, nil
}

func addToCgroups(dirs []string, pid int) error {
	for _, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// CleanupCgroups removes the vscript/* cgroups a killed lab left behind.
// Those of live containers are kept: they are locked, or hold processes (the
// kernel refuses to remove those).
func CleanupCgroups() error {
	parents := []string{filepath.Join(cgroupRoot, cgroupParent)}
	if !cgroupV2() {
		parents = nil
		for _, c := range []string{"memory", "pids", "cpu", "devices"} {
			parents = append(parents, filepath.Join(cgroupRoot, c, cgroupParent))
		}
	}
	var errs []error
	for _, parent := range parents {
		if err := cleanParent(parent); err != nil {
			errs = append(errs, fmt.Errorf("cgroup cleanup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// cleanParent removes the unlocked cgroups under parent, holding parent's
// lock so that none is made meanwhile.
func cleanParent(parent string) error {
	fi, err := os.Stat(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// A directory's link count is 2 plus its subdirectories, in cgroupfs as
	// elsewhere: without any there is nothing to clean, and every lab's
	// start-up is spared a lock and a read per hierarchy.
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && err == nil && st.Nlink == 2 {
		return nil
	}
	p, err := lockParent(parent, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer p.Close()
	entries, err := p.ReadDir(-1)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := removeStale(filepath.Join(parent, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// removeStale removes the cgroup dir unless a container holds it.
func removeStale(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return nil
		}
		return err
	}
	if err := unix.Rmdir(dir); err != nil && err != unix.EBUSY && err != unix.ENOENT {
		return err
	}
	return nil
}

// cgroupExplain returns the shell commands setting r's limits.
func cgroupExplain(id string, r Resources) []string {
	v2 := cgroupV2()
	var lines []string
	made := map[string]bool{}
	for _, w := range r.writes(v2) {
		dir := filepath.Join(cgroupRoot, w.ctrl, cgroupParent, id)
		if v2 {
			dir = filepath.Join(cgroupRoot, cgroupParent, id)
		}
		if !made[dir] {
			lines = append(lines, "mkdir -p "+dir)
			made[dir] = true
		}
		lines = append(lines, "echo "+shellJoin([]string{w.value})+" > "+filepath.Join(dir, w.file))
	}
	if !v2 && devicesCgroup() {
		dir := devicesDir()
		lines = append(lines, "mkdir -p "+dir+"  # once per lab: Docker's device rules, for all its containers",
			"echo a > "+filepath.Join(dir, "devices.deny"))
		for _, rule := range allowedDevices {
			lines = append(lines, "echo "+shellJoin([]string{rule})+" > "+filepath.Join(dir, "devices.allow"))
		}
		made[dir] = true
	}
	for _, dir := range sortedKeys(made) {
		lines = append(lines, "echo $PID > "+filepath.Join(dir, "cgroup.procs"))
	}
	return lines
}
