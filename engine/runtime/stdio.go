package runtime

import (
	"io"
	"os"
	"time"
)

// output is a stream copied from a child to the caller.
type output struct {
	r    *os.File      // our end: a pipe or a terminal's master (pollable, so Close stops a read)
	done chan struct{} // closed when the copy has ended
}

func copyOutput(r *os.File, w io.Writer) output {
	o := output{r: r, done: make(chan struct{})}
	if w == nil {
		w = io.Discard
	}
	go func() {
		io.Copy(w, r)
		close(o.done)
	}()
	return o
}

// copyPty copies the terminal's output to out until every holder of the
// slave is gone (reads then fail with EIO), and in to the terminal.
func copyPty(master *os.File, in io.Reader, out io.Writer) output {
	if in != nil {
		go io.Copy(master, in)
	}
	return copyOutput(master, out)
}

// drain waits for the copies to end, at most grace if grace >= 0, then
// cuts those still running, and closes our ends.
func drain(outs []output, grace time.Duration) {
	if grace >= 0 && len(outs) > 0 {
		timer := time.NewTimer(grace)
		defer timer.Stop()
	wait:
		for _, o := range outs {
			select {
			case <-o.done:
			case <-timer.C:
				for _, o := range outs {
					o.r.Close()
				}
				break wait
			}
		}
	}
	for _, o := range outs {
		<-o.done
		o.r.Close()
	}
}

// pipeStdio returns the files to give a child as its stdio for the caller's
// streams: an *os.File as is, nil as nil (/dev/null), anything else through a
// pipe copied by a goroutine. childEnds are to be closed once the child has
// started.
func pipeStdio(in io.Reader, out, errOut io.Writer) (stdio [3]*os.File, childEnds []*os.File, outputs []output, err error) {
	switch r := in.(type) {
	case nil:
	case *os.File:
		stdio[0] = r
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return stdio, nil, nil, err
		}
		stdio[0] = pr
		childEnds = append(childEnds, pr)
		go func() {
			io.Copy(pw, r)
			pw.Close()
		}()
	}
	for i, w := range []io.Writer{out, errOut} {
		if i == 1 && stdio[1] != nil && sameWriter(out, errOut) {
			// One pipe for both, so that one goroutine writes: a shared
			// bytes.Buffer would lose data to two.
			stdio[2] = stdio[1]
			break
		}
		switch w := w.(type) {
		case nil:
		case *os.File:
			stdio[i+1] = w
		default:
			pr, pw, err := os.Pipe()
			if err != nil {
				for _, f := range childEnds {
					f.Close()
				}
				drain(outputs, 0)
				return stdio, nil, nil, err
			}
			stdio[i+1] = pw
			childEnds = append(childEnds, pw)
			outputs = append(outputs, copyOutput(pr, w))
		}
	}
	return stdio, childEnds, outputs, nil
}

// sameWriter reports whether a and b are the same writer, as exec.Cmd decides
// it; writers of uncomparable types are different.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
