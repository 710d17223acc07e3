package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// selectorHelp is what -l says, wherever a command acts on many tenants.
const selectorHelp = "act on the tenants whose labels match this selector (Kubernetes' syntax: tier=free,region in (eu,us),!legacy)"

// addSelectorFlag adds -l/--selector.
func addSelectorFlag(cmd *cobra.Command, s *string) {
	cmd.Flags().StringVarP(s, "selector", "l", "", selectorHelp)
}

// parseSelector parses -l; a bad selector is bad input, saying which rule it broke.
func parseSelector(s string) (labels.Selector, error) {
	sel, err := labels.ParseSelector(s)
	return sel, badInput(err)
}

// targets is what a command that acts on tenants was pointed at: one SLUG, --all, or -l.
type targets struct {
	Slug     ident.Slug
	All      bool
	Selector labels.Selector
	selText  string
}

// many reports whether the command acts on more than one tenant (at most: --all or -l).
func (t targets) many() bool { return t.Slug.IsZero() }

// parseTargets checks that exactly one of SLUG, --all and -l is given.
func parseTargets(cmd *cobra.Command, args []string, all bool, selText string) (targets, error) {
	t := targets{All: all, selText: selText}
	given := 0
	for _, b := range []bool{len(args) == 1, all, selText != ""} {
		if b {
			given++
		}
	}
	switch {
	case given > 1:
		return t, usageErrorf("give one of a tenant SLUG, --all or -l SELECTOR")
	case given == 0:
		return t, usageErrorf("%s needs a tenant SLUG, --all or -l SELECTOR", cmdPath(cmd))
	case len(args) == 1:
		var err error
		t.Slug, err = parseSlug(args[0])
		return t, err
	case selText != "":
		var err error
		t.Selector, err = parseSelector(selText)
		return t, err
	}
	return t, nil
}

// noneSelected is the error of a command that acts and whose selector matched no tenant.
func noneSelected(sel string) error {
	return failedf("no tenant matches the selector %q (erpctl tenant list -L KEYS shows the labels)", sel)
}

// selectedSlugs lists the tenants a SLUG or -l names, for commands that act on each in turn.
func selectedSlugs(ctx context.Context, p *controlplane.Plane, t targets) ([]ident.Slug, error) {
	if !t.many() {
		return []ident.Slug{t.Slug}, nil
	}
	ts, err := p.ListTenantsSelected(ctx, t.Selector)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, noneSelected(t.selText)
	}
	slugs := make([]ident.Slug, len(ts))
	for i, tn := range ts {
		slugs[i] = ident.MustParseSlug(tn.Slug)
	}
	return slugs, nil
}

// confirmMany asks before a command changes more than one tenant: on a terminal it asks, with the
// count and the first names; elsewhere --yes must say so.
func confirmMany(io *term.IOStreams, yes bool, what string, slugs []ident.Slug) error {
	if len(slugs) < 2 || yes {
		return nil
	}
	names := make([]string, len(slugs))
	for i, s := range slugs {
		names[i] = s.String()
	}
	question := fmt.Sprintf("%s for %d tenants (%s)?", what, len(slugs), listNames(names, 5))
	if !io.IsStdinTTY() {
		return usageErrorf("%s: give --yes to confirm", strings.TrimSuffix(question, "?"))
	}
	ok, err := io.Confirm(question)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("read the answer: %w", err)
	}
	if !ok {
		return failedf("nothing changed: not confirmed")
	}
	return nil
}
