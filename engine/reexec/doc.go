// Package reexec runs vscript's own binary as a helper process.
//
// The lab, a container's init and an exec into a container all need a fresh
// process: new namespaces can only be entered cleanly by a process that has not
// started Go's threads yet, or by one created with clone flags. vscript starts
// /proc/self/exe with the helper's name in an environment variable, and main
// hands such a process to Init before doing anything else.
package reexec
