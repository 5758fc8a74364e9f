// Package engine is vscript's native container engine, seen from the
// builtins: one facade (Engine) over the parts that live in sub-packages —
// lab (the sandbox and the world), store (the state directory), and the
// image, runtime, volume and network parts as they arrive.
//
// The engine never imports Starlark. It reports everything it does as
// event.Events and fails with errors that read `op subject: cause` and wrap an
// errdefs class.
package engine
