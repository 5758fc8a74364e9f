package runtime

import "strings"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// buildEnv makes a process environment as Docker and runc do: the daemon's
// PATH, HOSTNAME and (with a tty) TERM come first; each given variable
// replaces one of those or is appended (Docker's ReplaceOrAppendEnvValues,
// where a bare NAME unsets NAME); HOME from passwd is appended when unset.
func buildEnv(env []string, hostname, home string, tty bool) []string {
	defaults := []string{defaultPath, "HOSTNAME=" + hostname}
	if tty {
		defaults = append(defaults, "TERM=xterm")
	}
	index := map[string]int{}
	for i, kv := range defaults {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	out := defaults
	for _, kv := range env {
		k, _, hasValue := strings.Cut(kv, "=")
		i, isDefault := index[k]
		switch {
		case !hasValue && isDefault:
			out[i] = ""
		case !hasValue:
		case isDefault:
			out[i] = kv
		default:
			out = append(out, kv)
		}
	}
	final := out[:0]
	hasHome := false
	for _, kv := range out {
		if kv == "" {
			continue
		}
		hasHome = hasHome || strings.HasPrefix(kv, "HOME=")
		final = append(final, kv)
	}
	if !hasHome {
		final = append(final, "HOME="+home)
	}
	return final
}

func lookupEnv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
