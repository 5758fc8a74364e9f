// Command vscript runs container labs written in Starlark. See README.md.
package main

import (
	"os"

	"vscript/cli"
	"vscript/engine/reexec"
)

func main() {
	// A re-exec'd helper (container init, exec) is handed to the engine
	// before anything else runs.
	if reexec.Init() {
		return
	}
	os.Exit(cli.Main(os.Args))
}
