package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

func newCmdToken(f *Factory) *cobra.Command {
	return newGroupCmd("token", "Create, list and revoke data API tokens",
		NewCmdTokenCreate(f, nil),
		NewCmdTokenList(f, nil),
		NewCmdTokenRevoke(f, nil),
	)
}

// tokenView is a token as token list prints it; the secret is never stored, so never listed.
type tokenView struct {
	ID        int64      `json:"id"`
	Tenant    string     `json:"tenant"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func viewToken(t controlplane.Token) tokenView {
	return tokenView{ID: t.ID, Tenant: t.Tenant, Name: t.Name, CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
}

// ---- token create ----

// TokenCreateOptions are the inputs of token create.
type TokenCreateOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug ident.Slug
	Name string
}

// NewCmdTokenCreate parses token create; runF replaces the run in tests.
func NewCmdTokenCreate(f *Factory, runF func(*TokenCreateOptions) error) *cobra.Command {
	opts := &TokenCreateOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "create SLUG --name NAME",
		Short: "Create a data API token for a tenant; it is printed once",
		Long: `Create a data API token for a tenant. The token is printed once, on stdout, and cannot be shown
again: erpctl keeps only its hash. NAME says who uses it; the API records it in created_by and
updated_by.`,
		Example: "  TOKEN=$(erpctl token create acme --name ci)",
		Args:    exactArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			slug, err := parseSlug(args[0])
			if err != nil {
				return err
			}
			opts.Slug, opts.Format = slug, f.Format()
			if opts.Name == "" {
				return usageErrorf("token create needs --name NAME: who uses the token")
			}
			if runF != nil {
				return runF(opts)
			}
			return tokenCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "who uses the token (required)")
	return cmd
}

func tokenCreateRun(ctx context.Context, opts *TokenCreateOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	tok, secret, err := p.CreateToken(ctx, opts.Slug, opts.Name)
	if err != nil {
		return err
	}
	res := struct {
		ID     int64  `json:"id"`
		Tenant string `json:"tenant"`
		Name   string `json:"name"`
		Token  string `json:"token"`
	}{tok.ID, tok.Tenant, tok.Name, secret}
	return opts.IO.Render(opts.Format, res, func() error {
		// The message to stderr, the token alone to stdout: TOKEN=$(erpctl token create ...) works.
		fmt.Fprintf(opts.IO.ErrOut, "%s Created token %d (%s) for tenant %s. Store it now: it is not shown again.\n",
			opts.IO.Styles().Success.Render("✓"), tok.ID, tok.Name, tok.Tenant)
		fmt.Fprintln(opts.IO.Out, secret)
		return nil
	})
}

// ---- token list ----

// TokenListOptions are the inputs of token list.
type TokenListOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format
	Now    func() time.Time

	Slug     ident.Slug // "": every tenant
	Selector string
}

// NewCmdTokenList parses token list; runF replaces the run in tests.
func NewCmdTokenList(f *Factory, runF func(*TokenListOptions) error) *cobra.Command {
	opts := &TokenListOptions{IO: f.IO, Plane: f.Plane, Now: time.Now}
	cmd := &cobra.Command{
		Use:     "list [SLUG | -l SELECTOR]",
		Aliases: []string{"ls"},
		Short:   "List the tokens of a tenant, of the tenants a selector matches, or of every tenant",
		Args:    maxArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if opts.Selector != "" {
				if len(args) == 1 {
					return usageErrorf("give a tenant SLUG or -l SELECTOR, not both")
				}
				if _, err := parseSelector(opts.Selector); err != nil {
					return err
				}
			}
			if len(args) == 1 {
				var err error
				if opts.Slug, err = parseSlug(args[0]); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return tokenListRun(cmd.Context(), opts)
		},
	}
	addSelectorFlag(cmd, &opts.Selector)
	cmd.Flag("selector").Usage = "list the tokens of the tenants whose labels match this selector"
	return cmd
}

func tokenListRun(ctx context.Context, opts *TokenListOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	var tokens []controlplane.Token
	if opts.Selector != "" {
		sel, _ := labels.ParseSelector(opts.Selector)
		tokens, err = p.ListTokensSelected(ctx, sel)
	} else {
		tokens, err = p.ListTokens(ctx, opts.Slug)
	}
	if err != nil {
		return err
	}
	views := make([]tokenView, 0, len(tokens))
	for _, t := range tokens {
		views = append(views, viewToken(t))
	}
	return opts.IO.Render(opts.Format, views, func() error {
		if len(views) == 0 {
			fmt.Fprintln(opts.IO.ErrOut, "No tokens; create one with: erpctl token create SLUG --name NAME")
			return nil
		}
		st := opts.IO.Styles()
		now := opts.Now()
		tbl := opts.IO.NewTable("id", "tenant", "name", "created", "state")
		for _, t := range views {
			state := st.Status("active")
			if t.RevokedAt != nil {
				state = st.Status("revoked") + " " + ago(now, t.RevokedAt)
			}
			tbl.Row(strconv.FormatInt(t.ID, 10), t.Tenant, t.Name, ago(now, &t.CreatedAt), state)
		}
		return tbl.Render()
	})
}

// ---- token revoke ----

// TokenRevokeOptions are the inputs of token revoke.
type TokenRevokeOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	ID int64
}

// NewCmdTokenRevoke parses token revoke; runF replaces the run in tests.
func NewCmdTokenRevoke(f *Factory, runF func(*TokenRevokeOptions) error) *cobra.Command {
	opts := &TokenRevokeOptions{IO: f.IO, Plane: f.Plane}
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: the data API refuses it from now on",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageErrorf("invalid token ID %q: use the number token list shows", args[0])
			}
			opts.ID, opts.Format = id, f.Format()
			if runF != nil {
				return runF(opts)
			}
			return tokenRevokeRun(cmd.Context(), opts)
		},
	}
}

func tokenRevokeRun(ctx context.Context, opts *TokenRevokeOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.RevokeToken(ctx, opts.ID); err != nil {
		return err
	}
	res := struct {
		ID      int64 `json:"id"`
		Revoked bool  `json:"revoked"`
	}{opts.ID, true}
	return opts.IO.Render(opts.Format, res, func() error {
		fmt.Fprintf(opts.IO.Out, "%s Revoked token %d\n", opts.IO.Styles().Success.Render("✓"), opts.ID)
		return nil
	})
}
