package runtime

// MergeArgs computes a container's argv from the image's ENTRYPOINT and CMD
// and the run's overrides, by Docker's rules:
//
//   - an entrypoint override that is non-empty replaces the image's entrypoint
//     and drops the image's CMD: only cmd follows it;
//   - an empty, non-nil entrypoint override (--entrypoint "") clears the
//     image's entrypoint, and the image's CMD still applies unless cmd is given;
//   - a nil override keeps the image's entrypoint;
//   - a non-empty cmd replaces the image's CMD.
//
// The result is entrypoint followed by cmd; it is empty when there is nothing
// to run, which Create refuses ("no command specified").
func MergeArgs(imageEntrypoint, imageCmd, entrypoint, cmd []string) []string {
	if len(entrypoint) == 0 {
		if len(cmd) == 0 {
			cmd = imageCmd
		}
		if entrypoint == nil {
			entrypoint = imageEntrypoint
		}
	}
	argv := make([]string, 0, len(entrypoint)+len(cmd))
	return append(append(argv, entrypoint...), cmd...)
}
