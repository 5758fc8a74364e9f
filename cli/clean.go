package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"vscript/engine"
)

// `vscript clean` runs on the real host (enter.c leaves it alone), where a
// --host lab that was killed may have left its networking behind.

func init() {
	commands = append(commands, cleanCommand)
}

func cleanCommand(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "clean",
		Short: "Remove what killed --host labs left on this machine (mounts, cgroups, bridges, iptables rules)",
		Long: "Remove what a --host lab leaves behind when it is killed before it can clean up: its scratch\n" +
			"directory under /run/vscript with its containers' overlay mounts, their cgroups, its bridges\n" +
			"(labelled with the alias \"vscript pid=...\") and the veths on them, their iptables rules, and,\n" +
			"once no --host lab is running, the VSCRIPT chains, restoring IPv4 forwarding and FORWARD's policy\n" +
			"if the lab changed them. What running labs own is kept. Sandboxed labs never need this.\n" +
			"Prints the commands it amounts to (all of them with -v, a summary otherwise).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			done, err := engine.CleanHost()
			out := cmd.OutOrStdout()
			if f.verbose || f.explain {
				for _, line := range done {
					fmt.Fprintln(out, line)
				}
			}
			if !f.quiet {
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
