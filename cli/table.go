package cli

import (
	"io"
	"text/tabwriter"
)

// newTable is the column layout every listing of vscript shares, Docker's
// own (docker/cli's formatter): columns at least 10 wide, 3 spaces apart.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
}
