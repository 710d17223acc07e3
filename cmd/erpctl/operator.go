package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane/operators"
	"github.com/erpctl/erpctl/internal/term"
)

// defaultConsoleURL is where a login link points when no daemon has recorded a console yet:
// the address the docs and make run give --console-listen.
const defaultConsoleURL = "http://127.0.0.1:8081"

func newCmdOperator(f *Factory) *cobra.Command {
	return newGroupCmd("operator", "Manage the console's operators",
		newGroupCmd("token", "Create, list and revoke operator tokens: the console's credentials",
			NewCmdOperatorTokenCreate(f, nil),
			NewCmdOperatorTokenList(f, nil),
			NewCmdOperatorTokenRevoke(f, nil),
		))
}

// operatorError makes the operator store's refusals bad input (exit 2).
func operatorError(err error) error {
	if errors.Is(err, operators.ErrInvalid) || errors.Is(err, operators.ErrNotFound) {
		return badInput(err)
	}
	return err
}

// ---- operator token create ----

// OperatorTokenCreateOptions are the inputs of operator token create.
type OperatorTokenCreateOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Name       string
	ConsoleURL string // "": the one the console's daemon recorded
}

// NewCmdOperatorTokenCreate parses operator token create; runF replaces the run in tests.
func NewCmdOperatorTokenCreate(f *Factory, runF func(*OperatorTokenCreateOptions) error) *cobra.Command {
	opts := &OperatorTokenCreateOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an operator token for the console, with a one-time login link; both are printed once",
		Long: `Create an operator token: the credential that opens the console (erpctl daemon
--console-listen), as Authorization: Bearer TOKEN for scripts or typed into the console's login
form. NAME says who uses it; every change made in the console is recorded with it.

It also prints a one-time login link (as Jupyter does): opening it signs the browser in, once,
within 24 hours. The link points at the console a daemon last served (it records its address),
else at ` + defaultConsoleURL + `; --console-url sets it. erpctl keeps only the hashes of both:
neither can be shown again. Tenant tokens never open the console, and operator tokens never
open the data API.`,
		Example: "  erpctl operator token create alice\n  erpctl operator token create ci -o json | jq -r .token",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name, opts.Format = args[0], f.Format()
			if err := operators.ValidateName(opts.Name); err != nil {
				return badInput(err)
			}
			if opts.ConsoleURL != "" {
				if err := checkPublicURL(opts.ConsoleURL); err != nil {
					return usageErrorf("--console-url %q: %s", opts.ConsoleURL, err)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return operatorTokenCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.ConsoleURL, "console-url", "", "the console's address for the login link (default: where a daemon last served it, else "+defaultConsoleURL+")")
	return cmd
}

func operatorTokenCreateRun(ctx context.Context, opts *OperatorTokenCreateOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	base := opts.ConsoleURL
	if base == "" {
		if base, err = p.Operators().ConsoleURL(ctx); err != nil {
			return err
		}
		if base == "" {
			base = defaultConsoleURL
		}
	}
	c, err := p.Operators().Create(ctx, opts.Name)
	if err != nil {
		return operatorError(err)
	}
	res := struct {
		ID       int64  `json:"id"`
		Name     string `json:"name"`
		Token    string `json:"token"`
		LoginURL string `json:"login_url"`
	}{c.ID, c.Name, c.Secret, operators.LoginURL(base, c.LoginCode)}
	return opts.IO.Render(opts.Format, res, func() error {
		// The message to stderr, the token alone to stdout: TOKEN=$(erpctl operator token create ...) works.
		fmt.Fprintf(opts.IO.ErrOut, "%s Created operator token %d (%s). Store it now: it is not shown again.\n"+
			"  One-time login link (valid 24 hours): %s\n", opts.IO.Styles().Success.Render("✓"), c.ID, term.Safe(c.Name), res.LoginURL)
		fmt.Fprintln(opts.IO.Out, c.Secret)
		return nil
	})
}

// ---- operator token list ----

// OperatorTokenListOptions are the inputs of operator token list.
type OperatorTokenListOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format
	Now    func() time.Time
}

// NewCmdOperatorTokenList parses operator token list; runF replaces the run in tests.
func NewCmdOperatorTokenList(f *Factory, runF func(*OperatorTokenListOptions) error) *cobra.Command {
	opts := &OperatorTokenListOptions{IO: f.IO, Plane: f.Plane, Now: time.Now}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the operator tokens (never the tokens themselves)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return operatorTokenListRun(cmd.Context(), opts)
		},
	}
}

func operatorTokenListRun(ctx context.Context, opts *OperatorTokenListOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	toks, err := p.Operators().List(ctx)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, toks, func() error {
		if len(toks) == 0 {
			fmt.Fprintln(opts.IO.ErrOut, "No operator tokens; create one with: erpctl operator token create NAME")
			return nil
		}
		st := opts.IO.Styles()
		now := opts.Now()
		tbl := opts.IO.NewTable("id", "name", "created", "state")
		for _, t := range toks {
			state := st.Status("active")
			if t.RevokedAt != nil {
				state = st.Status("revoked") + " " + ago(now, t.RevokedAt)
			}
			tbl.Row(strconv.FormatInt(t.ID, 10), term.Safe(t.Name), ago(now, &t.CreatedAt), state)
		}
		return tbl.Render()
	})
}

// ---- operator token revoke ----

// OperatorTokenRevokeOptions are the inputs of operator token revoke.
type OperatorTokenRevokeOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	ID int64
}

// NewCmdOperatorTokenRevoke parses operator token revoke; runF replaces the run in tests.
func NewCmdOperatorTokenRevoke(f *Factory, runF func(*OperatorTokenRevokeOptions) error) *cobra.Command {
	opts := &OperatorTokenRevokeOptions{IO: f.IO, Plane: f.Plane}
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an operator token: the console refuses it, its sessions and its login link at once",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageErrorf("invalid operator token ID %q: use the number operator token list shows", args[0])
			}
			opts.ID, opts.Format = id, f.Format()
			if runF != nil {
				return runF(opts)
			}
			return operatorTokenRevokeRun(cmd.Context(), opts)
		},
	}
}

func operatorTokenRevokeRun(ctx context.Context, opts *OperatorTokenRevokeOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Operators().Revoke(ctx, opts.ID); err != nil {
		return operatorError(err)
	}
	res := struct {
		ID      int64 `json:"id"`
		Revoked bool  `json:"revoked"`
	}{opts.ID, true}
	return opts.IO.Render(opts.Format, res, func() error {
		fmt.Fprintf(opts.IO.Out, "%s Revoked operator token %d; its console sessions ended\n", opts.IO.Styles().Success.Render("✓"), opts.ID)
		return nil
	})
}
