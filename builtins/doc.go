// Package builtins is vscript's Starlark layer: the builtins a lab script
// calls, the values they return, and the script runner (load, args, errors).
//
// Each family of builtins lives in its own file and registers itself — name,
// signature, doc text and function — with Register; the registry is the
// single source of the script's globals and of `vscript doc`. Methods of
// values (host.exec, container.stop) register the same way, named
// "TYPE.METHOD", so they document themselves too.
//
// Builtins make no syscalls. They unpack arguments, call the Engine interface
// (engine.Engine in production, a fake in tests) and wrap the results. The
// per-run state — the engine, the lab's context, the script's directory — is
// kept in the thread's locals (see Env).
package builtins
