// Package cli is vscript's command line: the cobra commands, flag handling,
// exit codes, and the printers that show engine events (-v, --explain,
// --json). It starts the lab sandbox, then hands the script to the builtins.
package cli
