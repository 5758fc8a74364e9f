// Package engine is vscript's native container engine, seen from the
// builtins: one facade (Engine) over the parts that live in sub-packages —
// lab (the sandbox and the world), store (the state directory), image and
// build, runtime, volume and network. The facade's files join them: a
// container's life is in container.go, which calls the network hooks of
// netglue.go and the volume hooks of volglue.go at create, start, exit and
// rm (docs/internals.md has the map).
//
// The engine never imports Starlark. It reports everything it does as
// event.Events and fails with errors that read `op subject: cause` and wrap an
// errdefs class.
package engine
