// Command erpctl is the control plane of a schema-per-tenant ERP on PostgreSQL.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// Set by the linker: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // failed, or problems found
	exitUsage = 2 // bad usage or bad input
)

func main() {
	// A database that does not answer is an error within seconds, not a hang; a URL's own
	// connect_timeout still wins.
	if os.Getenv("PGCONNECT_TIMEOUT") == "" {
		os.Setenv("PGCONNECT_TIMEOUT", "15")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills as usual.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], term.System(), os.Getenv)
	stop()
	os.Exit(code)
}

// run executes erpctl with args and returns the exit code. Tests call it in-process.
func run(ctx context.Context, args []string, ios *term.IOStreams, getenv func(string) string) int {
	f := newFactory(ios, getenv)
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	msg := oneSentence(err.Error())
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		msg = "interrupted; every tenant change is one transaction, so nothing was left half-applied"
	}
	fmt.Fprintf(ios.ErrOut, "erpctl: %s\n", msg)
	if isUsageError(err) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(ios.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// oneSentence keeps a message on one line, with the control characters of any text it quotes
// from a file or the database escaped.
func oneSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return term.Safe(strings.TrimSuffix(s, "."))
}

// exitError is an error with its exit code.
type exitError struct {
	code  int
	usage bool // print the usage hint
	err   error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is bad usage: exit 2 and a hint to --help.
func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, usage: true, err: fmt.Errorf(format, a...)}
}

// badInput is input erpctl refuses: exit 2.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitUsage, err: err}
}

// failed is a command that ran and found problems or failed: exit 1 with the message.
func failedf(format string, a ...any) error {
	return &exitError{code: exitFail, err: fmt.Errorf(format, a...)}
}

func isUsageError(err error) bool {
	var e *exitError
	if errors.As(err, &e) {
		return e.usage
	}
	// Cobra's own: an unknown command or a flag it could not parse.
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.HasPrefix(msg, "required flag")
}

// exitCode maps an error to erpctl's exit codes: 2 for bad usage and bad input (including a
// tenant, module or token named on the command line that is invalid, exists already or does
// not exist), 1 for everything else.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if isUsageError(err) {
		return exitUsage
	}
	for _, target := range []error{controlplane.ErrInvalid, controlplane.ErrExists, controlplane.ErrUnknownModule,
		controlplane.ErrNotFound, ident.ErrInvalidSlug} {
		if errors.Is(err, target) {
			return exitUsage
		}
	}
	return exitFail
}

// flagError turns cobra's flag parse errors into usage errors.
func flagError(_ *cobra.Command, err error) error {
	return &exitError{code: exitUsage, usage: true, err: err}
}
