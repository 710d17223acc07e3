// Package term is erpctl's terminal: the IO streams every command writes to, whether they are
// terminals and want colour, the lipgloss styles, one renderer for table, JSON and YAML output,
// and a progress bar.
package term

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	xterm "github.com/charmbracelet/x/term"
)

// IOStreams are the standard streams of a command, with what is known about them. Nothing in
// erpctl prints to os.Stdout or os.Stderr except through one.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	inTTY          bool
	outTTY, errTTY bool
	outFd, errFd   uintptr
	colorEnabled   bool
	width          int // fixed terminal width; 0: ask the terminal

	mu     sync.Mutex
	styles *Styles
}

// System returns the process's streams. Colour is on when stdout is a terminal, NO_COLOR is
// unset and TERM is not "dumb".
func System() *IOStreams {
	s := &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		inTTY:  xterm.IsTerminal(os.Stdin.Fd()),
		outTTY: xterm.IsTerminal(os.Stdout.Fd()),
		errTTY: xterm.IsTerminal(os.Stderr.Fd()),
		outFd:  os.Stdout.Fd(),
		errFd:  os.Stderr.Fd(),
	}
	s.colorEnabled = s.outTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return s
}

// Test returns streams over buffers: not terminals, no colour, 80 columns.
func Test() (s *IOStreams, stdin, stdout, stderr *bytes.Buffer) {
	stdin, stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: stdin, Out: stdout, ErrOut: stderr, width: 80}, stdin, stdout, stderr
}

// IsStdinTTY reports whether stdin is a terminal: someone who can answer a question.
func (s *IOStreams) IsStdinTTY() bool { return s.inTTY }

// SetStdinTTY overrides whether stdin counts as a terminal (for tests).
func (s *IOStreams) SetStdinTTY(v bool) { s.inTTY = v }

// Confirm asks a yes/no question on stderr and reads the answer from stdin: true only for "y" or
// "yes".
func (s *IOStreams) Confirm(question string) (bool, error) {
	fmt.Fprintf(s.ErrOut, "%s [y/N] ", question)
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if err != nil && line == "" {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY reports whether stderr is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

// SetStdoutTTY overrides whether stdout counts as a terminal (for tests).
func (s *IOStreams) SetStdoutTTY(v bool) { s.outTTY = v }

// SetStderrTTY overrides whether stderr counts as a terminal (for tests).
func (s *IOStreams) SetStderrTTY(v bool) { s.errTTY = v }

// ColorEnabled reports whether output may carry colour and other ANSI styling.
func (s *IOStreams) ColorEnabled() bool { return s.colorEnabled }

// SetColorEnabled turns colour on or off (--no-color, NO_COLOR).
func (s *IOStreams) SetColorEnabled(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.colorEnabled = v
	s.styles = nil
}

// SetWidth fixes the terminal width (for tests); 0 asks the terminal again.
func (s *IOStreams) SetWidth(w int) { s.width = w }

// TerminalWidth is the width of the terminal stdout (else stderr) is on, 80 when neither is one.
func (s *IOStreams) TerminalWidth() int {
	if s.width > 0 {
		return s.width
	}
	for _, t := range []struct {
		tty bool
		fd  uintptr
	}{{s.outTTY, s.outFd}, {s.errTTY, s.errFd}} {
		if t.tty {
			if w, _, err := xterm.GetSize(t.fd); err == nil && w > 0 {
				return w
			}
		}
	}
	return 80
}
