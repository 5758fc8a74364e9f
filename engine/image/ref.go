package image

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"vscript/engine/errdefs"
)

// The grammar is Docker's (github.com/distribution/reference), minus digests.
// The expressions are compiled on first use, not at start-up: every vscript
// run would pay for them, most never parse a reference.
var (
	refComponent = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	refDomain    = `(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?`
	refName      = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:` + refDomain + `/)?` + refComponent + `(?:/` + refComponent + `)*$`)
	})
	refTag = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w][\w.-]{0,127}$`) })
)

// ParseRef normalizes an image reference to NAME:TAG, the form stored in
// index.json: the tag defaults to "latest", and Docker Hub's implicit
// prefixes go ("docker.io/library/busybox" is "busybox:latest"), so that a
// name means the same thing however a user spells it.
func ParseRef(ref string) (string, error) {
	name, tag := ref, "latest"
	// A colon after the last slash starts the tag; one before it belongs to
	// a registry's port.
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	if strings.Contains(ref, "@") || !refName().MatchString(name) || !refTag().MatchString(tag) || len(name) > 255 {
		return "", fmt.Errorf("image %s: invalid reference format: %w", ref, errdefs.ErrInvalid)
	}
	for _, hub := range []string{"docker.io/", "index.docker.io/"} {
		name = strings.TrimPrefix(name, hub)
	}
	if rest, ok := strings.CutPrefix(name, "library/"); ok && !strings.Contains(rest, "/") {
		name = rest
	}
	return name + ":" + tag, nil
}
