package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"vscript/engine"
)

// `vscript images` and `vscript prune`: the state directory's images and
// build cache, outside any lab (enter.c leaves these commands alone).

func init() {
	commands = append(commands, imagesCommand, pruneCommand)
}

// imageJSON is one line of `vscript images --json`, in the keys of `docker
// images --format json` that apply; the id is the full one and the size in
// bytes, for scripts.
type imageJSON struct {
	Repository string `json:"Repository"`
	Tag        string `json:"Tag"`
	ID         string `json:"ID"`
	CreatedAt  string `json:"CreatedAt"`
	Size       int64  `json:"Size"`
}

func imagesCommand(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the images of the state directory (docker images)",
		Long: "List the images of the state directory, as `docker images`: one line per name, then untagged\n" +
			"images, except the intermediate images of builds (the build cache). With --json, one JSON object\n" +
			"per line; with -q, the image ids.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := engine.ListImages(f.root)
			if err != nil {
				return err
			}
			return printImages(cmd.OutOrStdout(), rows, f, time.Now())
		},
	}
}

func printImages(out io.Writer, rows []engine.ImageRow, f *flags, now time.Time) error {
	if f.json {
		enc := json.NewEncoder(out)
		for _, r := range rows {
			repo, tag := splitRef(r.Ref)
			if err := enc.Encode(imageJSON{Repository: repo, Tag: tag, ID: r.ID,
				CreatedAt: r.Created.UTC().Format(time.RFC3339), Size: r.Size}); err != nil {
				return err
			}
		}
		return nil
	}
	if f.quiet {
		seen := map[string]bool{}
		for _, r := range rows {
			if id := shortID(r.ID); !seen[id] {
				seen[id] = true
				fmt.Fprintln(out, id)
			}
		}
		return nil
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	for _, r := range rows {
		repo, tag := splitRef(r.Ref)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\n", repo, tag, shortID(r.ID), humanDuration(now.Sub(r.Created)), humanSize(r.Size))
	}
	return tw.Flush()
}

// splitRef splits "name:tag"; an untagged image is Docker's <none> <none>.
func splitRef(ref string) (repo, tag string) {
	i := strings.LastIndexByte(ref, ':')
	if ref == "" || i < 0 {
		return "<none>", "<none>"
	}
	return ref[:i], ref[i+1:]
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// humanSize is a size as Docker prints it: three significant digits,
// decimal units ("4.26MB").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

// humanDuration is an age as Docker prints it ("About a minute", "3 days").
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
}

// pruneJSON is `vscript prune --json`, shaped as Docker's prune responses.
type pruneJSON struct {
	ImagesDeleted       []string `json:"ImagesDeleted"`
	CacheRecordsDeleted int      `json:"CacheRecordsDeleted"`
	SpaceReclaimed      int64    `json:"SpaceReclaimed"`
}

func pruneCommand(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Remove the build cache, untagged images and unused layers",
		Long: "Remove the build cache and every untagged image (a build's intermediate images and dangling ones,\n" +
			"as `docker builder prune` and `docker image prune`), then the blobs and layers that no image uses.\n" +
			"Tagged images, volumes and layers that a running container uses stay. A build running in another\n" +
			"lab meanwhile may fail. With --json, one JSON object.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := engine.PruneImages(f.root)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.quiet {
				return nil
			}
			if f.json {
				return json.NewEncoder(out).Encode(pruneJSON{ImagesDeleted: append([]string{}, rep.Images...),
					CacheRecordsDeleted: rep.CacheRecords, SpaceReclaimed: rep.Reclaimed})
			}
			if len(rep.Images) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
				for _, id := range rep.Images {
					fmt.Fprintln(out, "deleted: "+id)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "Deleted build cache records: %d\n", rep.CacheRecords)
			fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(rep.Reclaimed))
			return nil
		},
	}
}

// progressTerminal is where long operations draw progress bars: stderr,
// when it is a terminal and -q was not given.
func progressTerminal(f *flags) io.Writer {
	if f.quiet || f.json || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return os.Stderr
}
