package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"vscript/engine/errdefs"
)

// cgroupDirs lists the existing cgroup directories of container id.
func cgroupDirs(id string) []string {
	var dirs []string
	candidates := []string{filepath.Join(cgroupRoot, cgroupParent, id)}
	for _, c := range []string{"memory", "pids", "cpu"} {
		candidates = append(candidates, filepath.Join(cgroupRoot, c, cgroupParent, id))
	}
	for _, d := range candidates {
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestLimits(t *testing.T) {
	c := startSleeper(t, func(s *Spec) {
		s.Resources = Resources{Memory: 64 << 20, PidsLimit: 4, CPUs: 0.5}
	})
	id := c.ID()
	if cgroupV2() {
		dir := filepath.Join(cgroupRoot, cgroupParent, id)
		for file, want := range map[string]string{"memory.max": "67108864", "pids.max": "4", "cpu.max": "50000 100000"} {
			if got := readTrim(t, filepath.Join(dir, file)); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
	} else {
		for file, want := range map[string]string{
			"memory/" + cgroupParent + "/" + id + "/memory.limit_in_bytes": "67108864",
			"pids/" + cgroupParent + "/" + id + "/pids.max":                "4",
			"cpu/" + cgroupParent + "/" + id + "/cpu.cfs_quota_us":         "50000",
		} {
			if got := readTrim(t, filepath.Join(cgroupRoot, file)); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
	}
	own := readTrim(t, "/proc/"+strconv.Itoa(c.Pid())+"/cgroup")
	if !strings.Contains(own, "/"+cgroupParent+"/"+id+"\n") && !strings.HasSuffix(own, "/"+cgroupParent+"/"+id) {
		t.Errorf("PID 1's cgroups:\n%s", own)
	}

	// An exec'd process counts against the limit: PID 1, sh and two
	// sleeps fill the 4 pids, so the third sleep cannot fork.
	code, out := execOut(t, c, ExecSpec{Args: []string{"sh", "-c",
		"cat /proc/self/cgroup; for i in 1 2 3; do sleep 1000 >/dev/null 2>&1 & done; echo forked"}})
	if code == 0 || !strings.Contains(out, "can't fork") || strings.Contains(out, "forked") {
		t.Errorf("forks beyond pids.max: exit %d, %q", code, out)
	}
	if !strings.Contains(out, "/"+cgroupParent+"/"+id) {
		t.Errorf("exec'd process is not in the container's cgroups: %q", out)
	}

	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if dirs := cgroupDirs(id); len(dirs) != 0 {
		t.Errorf("cgroups left after Destroy: %v", dirs)
	}
}

func TestLimitErrors(t *testing.T) {
	spec, _, _ := newSpec(t, "true")
	spec.Resources.Memory = 1000
	_, err := Create(spec)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.HasPrefix(err.Error(), "cgroup "+spec.ID+": memory: ") {
		t.Errorf("Create with 1000 bytes of memory: %v", err)
	}
	if dirs := cgroupDirs(spec.ID); len(dirs) != 0 {
		t.Errorf("cgroups left: %v", dirs)
	}

	// Two containers with one id collide on their cgroups.
	c := startSleeper(t, func(s *Spec) { s.Resources.PidsLimit = 10 })
	spec, _, _ = newSpec(t, "true")
	spec.ID = c.ID()
	spec.Resources.PidsLimit = 10
	if _, err := Create(spec); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Create with an id in use: %v, want ErrConflict", err)
	}
	if len(cgroupDirs(c.ID())) != 1 {
		t.Error("the failed Create removed the running container's cgroup")
	}
}

func TestCleanupCgroups(t *testing.T) {
	needRoot(t)
	running := startSleeper(t, func(s *Spec) { s.Resources.PidsLimit = 10 })
	// A cgroup left by a killed lab: made as Create makes it, never
	// removed, and its lock gone with the lab's process.
	stale := "rt-stale-" + strconv.Itoa(os.Getpid())
	cg, err := newCgroup(stale, Resources{PidsLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cg.remove() })
	for _, f := range cg.locks {
		f.Close()
	}
	// A created container, not started: its cgroup holds no process yet.
	created, _, _ := newSpec(t, "true")
	created.Resources.PidsLimit = 10
	c, err := Create(created)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	if err := CleanupCgroups(); err != nil {
		t.Fatal(err)
	}
	if dirs := cgroupDirs(stale); len(dirs) != 0 {
		t.Errorf("stale cgroup kept: %v", dirs)
	}
	if len(cgroupDirs(running.ID())) != 1 {
		t.Error("a running container's cgroup was removed")
	}
	if len(cgroupDirs(c.ID())) != 1 {
		t.Error("a created container's cgroup was removed")
	}
	if err := c.Start(); err != nil {
		t.Errorf("start after cleanup: %v", err)
	}
}

// Labs starting beside this one run CleanupCgroups while it makes
// containers: no cgroup may be taken away between its mkdir and its lock.
func TestCgroupsWhileCleaning(t *testing.T) {
	needRoot(t)
	done := make(chan struct{})
	cleaned := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				cleaned <- n
				return
			default:
				CleanupCgroups()
				n++
			}
		}
	}()
	var errs []error
	for i := range 300 {
		cg, err := newCgroup("rt-race-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(i), Resources{PidsLimit: 10})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := cg.remove(); err != nil {
			errs = append(errs, err)
		}
	}
	close(done)
	t.Logf("%d cleanups ran meanwhile", <-cleaned)
	if len(errs) > 0 {
		t.Errorf("%d of 300 cgroups failed: %v", len(errs), errors.Join(errs...))
	}
}

// Every container of a lab is in one devices cgroup holding Docker's rules;
// it goes once the last container has.
func TestSharedDevicesCgroup(t *testing.T) {
	needRoot(t)
	if cgroupV2() || !devicesCgroup() {
		// No v1 devices controller: no device rules (v2 needs eBPF; not done).
		if dir, err := acquireDevices(); dir != "" || err != nil {
			t.Fatalf("devices cgroup %q, %v without a v1 devices controller", dir, err)
		}
		return
	}
	devicesOf := func(pid int) string {
		for _, line := range strings.Split(readTrim(t, "/proc/"+strconv.Itoa(pid)+"/cgroup"), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "devices" {
				return filepath.Join(cgroupRoot, "devices", parts[2])
			}
		}
		t.Fatalf("pid %d has no devices cgroup", pid)
		return ""
	}
	a := startSleeper(t, nil)
	b := startSleeper(t, func(s *Spec) { s.Resources.PidsLimit = 10 })
	dir := devicesOf(a.Pid())
	if dir != devicesDir() || devicesOf(b.Pid()) != dir {
		t.Fatalf("devices cgroups %s and %s, want both %s", dir, devicesOf(b.Pid()), devicesDir())
	}
	rules := readTrim(t, filepath.Join(dir, "devices.list"))
	if !strings.Contains(rules, "c 1:3 rwm") || strings.Contains(rules, "a *:* rwm") {
		t.Errorf("devices.list:\n%s", rules)
	}
	if err := ReleaseCgroups(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("removed while containers use it: %v", err)
	}
	a.Destroy()
	b.Destroy()
	if err := ReleaseCgroups(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("left behind: %v", err)
	}
}
