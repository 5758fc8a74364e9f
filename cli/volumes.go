package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"vscript/engine"
)

// `vscript volumes` and `vscript volume rm`: the state directory's managed
// volumes, outside any lab (enter.c leaves these commands alone).

func init() {
	commands = append(commands, volumesCommand, volumeCommand)
}

// volumeJSON is one line of `vscript volumes --json`, in the keys of
// `docker volume ls --format json` that apply.
type volumeJSON struct {
	Name       string `json:"Name"`
	Driver     string `json:"Driver"`
	Mountpoint string `json:"Mountpoint"`
	Anonymous  bool   `json:"Anonymous"`
	CreatedAt  string `json:"CreatedAt"`
}

func volumesCommand(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "volumes",
		Short: "List the managed volumes of the state directory (docker volume ls)",
		Long: "List the managed volumes of the state directory, as `docker volume ls`. Anonymous volumes left by\n" +
			"labs that were killed are removed first. With --json, one JSON object per line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vols, err := engine.ListVolumes(f.root)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				enc := json.NewEncoder(out)
				for _, v := range vols {
					if err := enc.Encode(volumeJSON{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint,
						Anonymous: v.Anonymous, CreatedAt: v.CreatedAt.Format(time.RFC3339)}); err != nil {
						return err
					}
				}
				return nil
			}
			if f.quiet {
				for _, v := range vols {
					fmt.Fprintln(out, v.Name)
				}
				return nil
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
			for _, v := range vols {
				fmt.Fprintf(tw, "local\t%s\n", v.Name)
			}
			return tw.Flush()
		},
	}
}

func volumeCommand(f *flags) *cobra.Command {
	var force bool
	rm := &cobra.Command{
		Use:   "rm NAME [NAME...]",
		Short: "Remove volumes and their data (docker volume rm)",
		Long: "Remove managed volumes and their data, as `docker volume rm`. A volume that a container of a running\n" +
			"lab uses is refused. With -f, a volume that does not exist is no error.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			// As docker volume rm: each name on its own, the removed ones
			// printed, the others' errors reported, failure if any failed.
			failed := 0
			for _, name := range names {
				if err := engine.RemoveVolume(f.root, name, force); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "vscript: %v\n", err)
					failed++
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			if failed > 0 {
				return fmt.Errorf("volume rm: %d of %d volumes not removed", failed, len(names))
			}
			return nil
		},
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "no error for a volume that does not exist")
	vol := &cobra.Command{
		Use:   "volume",
		Short: "Manage volumes: vscript volume rm NAME",
		Args:  cobra.NoArgs,
	}
	vol.AddCommand(rm)
	return vol
}
