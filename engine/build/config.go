package build

import (
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Images are described with the image store's types: v1.Config is the
// "config" object of an image configuration (Cmd, Entrypoint, Env,
// WorkingDir, User, Volumes, ExposedPorts, Labels, StopSignal, Shell),
// v1.History one entry of its history, where Build sets CreatedBy in
// Docker's legacy-builder form ("/bin/sh -c #(nop)  CMD [\"sh\"]",
// "/bin/sh -c echo hi") and EmptyLayer for steps that add no layer.

// defaultPath is the PATH Docker gives a stage whose base image sets none
// (FROM scratch included).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultShell runs the shell forms of RUN, CMD and ENTRYPOINT when no SHELL
// was given.
var defaultShell = []string{"/bin/sh", "-c"}

// cloneConfig returns a deep copy, so a step's changes never leak into the
// config of the image it started from.
func cloneConfig(c v1.Config) v1.Config {
	return *c.DeepCopy()
}

// shellOf is the shell for shell-form commands.
func shellOf(c *v1.Config) []string {
	if len(c.Shell) == 0 {
		return slices.Clone(defaultShell)
	}
	return slices.Clone(c.Shell)
}

// getEnv looks a variable up in c.Env.
func getEnv(c *v1.Config, key string) (string, bool) {
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}

// setEnv replaces key's entry in place, keeping the order Docker keeps, or
// appends it.
func setEnv(c *v1.Config, key, value string) {
	for i, kv := range c.Env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			c.Env[i] = key + "=" + value
			return
		}
	}
	c.Env = append(c.Env, key+"="+value)
}

// volumePaths returns the config's VOLUME paths, sorted.
func volumePaths(c *v1.Config) []string {
	return slices.Sorted(maps.Keys(c.Volumes))
}
