package reexec

import (
	"fmt"
	"os"
	"os/exec"
)

// EnvName names the helper a re-exec'd process must run.
const EnvName = "_VSCRIPT_REEXEC"

var helpers = map[string]func(){}

// Register makes fn runnable as the helper name. Helpers register from init
// functions; a name registered twice is a programming error.
func Register(name string, fn func()) {
	if _, dup := helpers[name]; dup {
		panic(fmt.Sprintf("reexec: helper %q registered twice", name))
	}
	helpers[name] = fn
}

// Init runs the helper this process was started as, and reports whether it
// did. A helper normally exits the process itself; if it returns, Init exits 0
// on its behalf, so main never continues into the CLI by mistake.
func Init() bool {
	name := os.Getenv(EnvName)
	if name == "" {
		return false
	}
	fn, ok := helpers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "vscript: unknown helper %q\n", name)
		os.Exit(2)
	}
	os.Unsetenv(EnvName)
	fn()
	os.Exit(0)
	return true
}

// Command returns a command that runs the helper name with args. The caller
// sets namespaces, pipes and the rest of the environment before starting it.
func Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = "vscript"
	cmd.Env = append(os.Environ(), EnvName+"="+name)
	return cmd
}
