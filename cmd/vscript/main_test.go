package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"vscript/cli"
	"vscript/engine/reexec"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"vscript": func() {
			if reexec.Init() {
				return
			}
			os.Exit(cli.Main(os.Args))
		},
	})
}

// TestScript runs testdata/script/*.txtar: one behaviour each, end to end,
// through the real binary. Labs need root; on CI a missing privilege fails.
func TestScript(t *testing.T) {
	requireRoot(t)
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("..", "..", "testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("VSCRIPT_ROOT", filepath.Join(env.WorkDir, "root"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":  cmdExitcode,
			"waitfile":  cmdWaitfile,
			"hoststate": cmdHoststate,
			"junit":     cmdJUnit,
		},
	})
}

func requireRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("these tests need root (namespaces, mounts, netlink); CI must run them as root")
	}
	t.Skip("needs root")
}

// exitcode N PROG [ARGS...] runs a program and checks its exit status;
// its output is kept for stdout/stderr as with exec.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// waitfile FILE waits (up to 20s) until FILE exists: how a test knows a lab
// running in the background has reached a point.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear within 20s", path)
}

// hoststate save NAME | hoststate same NAME [TOKEN]
//
// save records what the real host has: network interfaces, mounts, iptables
// rules. same checks (retrying for a few seconds, since the kernel tears
// namespaces down asynchronously) that the host is as recorded and that no
// process's command line contains TOKEN.
func cmdHoststate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: hoststate save|same NAME [TOKEN]")
	}
	file := ts.MkAbs(".hoststate-" + args[1])
	switch args[0] {
	case "save":
		ts.Check(os.WriteFile(file, []byte(hostState()), 0o644))
	case "same":
		want, err := os.ReadFile(file)
		ts.Check(err)
		token := ""
		if len(args) > 2 {
			token = args[2]
		}
		var got, procs string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			got, procs = hostState(), processesWith(token)
			if got == string(want) && procs == "" {
				return
			}
		}
		if procs != "" {
			ts.Fatalf("processes left behind:\n%s", procs)
		}
		ts.Fatalf("host state changed:\n--- before\n%s\n--- after\n%s", want, got)
	default:
		ts.Fatalf("usage: hoststate save|same NAME [TOKEN]")
	}
}

func hostState() string {
	var b bytes.Buffer
	links, _ := os.ReadDir("/sys/class/net")
	b.WriteString("links:")
	for _, l := range links {
		b.WriteString(" " + l.Name())
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			points = append(points, f[4])
		}
	}
	sort.Strings(points)
	fmt.Fprintf(&b, "\nmounts: %s\n", strings.Join(points, " "))
	for _, table := range []string{"filter", "nat"} {
		out, _ := exec.Command("iptables-save", "-t", table).Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "-") || strings.HasPrefix(line, ":") {
				if i := strings.LastIndex(line, " ["); i > 0 {
					line = line[:i]
				}
				fmt.Fprintf(&b, "%s %s\n", table, line)
			}
		}
	}
	return b.String()
}

func processesWith(token string) string {
	if token == "" {
		return ""
	}
	var found []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cl := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(cl, token) && !strings.Contains(cl, "hoststate") {
			found = append(found, d.Name()+": "+cl)
		}
		// A killed lab's processes are zombies until the machine's init
		// reaps them, and until then they still hold their cgroups.
		if stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat")); err == nil {
			if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 1 && f[0] == "Z" && f[1] == "1" {
				found = append(found, d.Name()+": zombie")
			}
		}
	}
	return strings.Join(found, "\n")
}
