// Package event is the engine's report of what it does. Every operation emits
// one Event carrying the docker command it mirrors and the Linux commands it
// amounts to; the CLI's printers choose what a user sees (-v, --explain,
// --json). The engine never prints.
package event
