package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mattn/go-isatty"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progress shows how far a long operation is on one line of stderr,
// rewritten in place. It is silent unless stderr is a terminal and the
// output is text; a nil *progress is silent too.
type progress struct {
	w     io.Writer
	total int
	done  int
	shown bool
}

// progress returns the progress line of an operation of total steps (0 when
// the number is not known).
func (c *cli) progress(total int) *progress {
	if c.json || !c.isTerminal(c.stderr) {
		return nil
	}
	return &progress{w: c.stderr, total: total}
}

// step counts one step done and shows what is being done now.
func (p *progress) step(what string) {
	if p == nil {
		return
	}
	p.done++
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r\x1b[K[%d/%d] %s", p.done, p.total, what)
	} else {
		fmt.Fprintf(p.w, "\r\x1b[K%s", what)
	}
	p.shown = true
}

// clear removes the progress line, before other output or at the end.
func (p *progress) clear() {
	if p == nil || !p.shown {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	p.shown = false
}
