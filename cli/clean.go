package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"vscript/engine"
)

// `vscript clean` runs on the real host (enter.c leaves it alone), where a
// --host lab that was killed may have left its networking behind.

func init() {
	commands = append(commands, cleanCommand)
}

// cleanJSON is `vscript clean --json`: the commands it amounted to.
type cleanJSON struct {
	Changes []string `json:"Changes"`
}

func cleanCommand(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "clean",
		Short: "Remove what killed --host labs left on this machine (mounts, bridges, iptables rules)",
		Long: "Remove what a --host lab leaves behind when it is killed before it can clean up: its containers'\n" +
			"mounts and scratch directory, its cgroups, its bridges (labelled with the alias \"vscript pid=...\") and\n" +
			"the veths on them, their iptables rules, and, once no --host lab is running, the VSCRIPT chains,\n" +
			"restoring IPv4 forwarding and FORWARD's policy if the lab changed them. What running labs use is\n" +
			"kept. Sandboxed labs never need this. Prints a summary; with -v, the commands it amounted to; with\n" +
			"--json, one JSON object listing them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			done, err := engine.CleanHost()
			out := cmd.OutOrStdout()
			switch {
			case f.json:
				if jerr := json.NewEncoder(out).Encode(cleanJSON{Changes: append([]string{}, done...)}); jerr != nil {
					return errors.Join(err, jerr)
				}
			case f.quiet:
			default:
				if f.verbose || f.explain {
					for _, line := range done {
						fmt.Fprintln(out, line)
					}
				}
				if len(done) == 0 {
					fmt.Fprintln(out, "nothing to clean")
				} else {
					fmt.Fprintf(out, "cleaned: %d changes\n", len(done))
				}
			}
			return err
		},
	}
}
