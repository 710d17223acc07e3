package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane/fair"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/term"
)

// TenantTopOptions are the inputs of tenant top.
type TenantTopOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Since    time.Duration
	Limit    int
	SortBy   string
	Selector string
	selector labels.Selector
}

// NewCmdTenantTop parses tenant top; runF replaces the run in tests.
func NewCmdTenantTop(f *Factory, runF func(*TenantTopOptions) error) *cobra.Command {
	opts := &TenantTopOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "top [--since 5m] [--limit 20] [--sort-by requests|errors|throttled|db|rows] [-l SELECTOR]",
		Short: "Show the tenants that used the data API most over the last minutes",
		Long: `Show the tenants that used the data API most over the last minutes, as every daemon counted
them: requests (throttled ones included), requests per second, errors (5xx), throttled requests
(429), the time their requests held a database connection and its share of every tenant's, and the
rows returned. Each daemon publishes its counts every 10 seconds, into one-minute buckets kept for
an hour; --since covers the whole minutes since then, the current one included. -l shows only the
tenants whose labels match (the database time's share stays that of every tenant's).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.Since <= 0 || opts.Since > fair.UsageRetention:
				return usageErrorf("--since must be more than 0 and at most %s (usage is kept that long), got %s", fair.UsageRetention, opts.Since)
			case opts.Limit < 1 || opts.Limit > 10000:
				return usageErrorf("--limit must be from 1 to 10000, got %d", opts.Limit)
			case !slices.Contains(fair.SortKeys, opts.SortBy):
				return usageErrorf("--sort-by %q: sort by one of %s", opts.SortBy, strings.Join(fair.SortKeys, ", "))
			}
			if cmd.Flags().Changed("selector") {
				var err error
				if opts.selector, err = parseSelector(opts.Selector); err != nil {
					return err
				}
			}
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return tenantTopRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Since, "since", 5*time.Minute, "how far back to look (at most 1h)")
	fl.IntVar(&opts.Limit, "limit", 20, "how many tenants to show")
	fl.StringVar(&opts.SortBy, "sort-by", "requests", "what to sort by: "+strings.Join(fair.SortKeys, ", "))
	addSelectorFlag(cmd, &opts.Selector)
	return cmd
}

func tenantTopRun(ctx context.Context, opts *TenantTopOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	top, err := fair.NewStore(p.Pool()).Top(ctx, opts.Since, opts.Limit, opts.SortBy, opts.selector)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, top, func() error {
		window := top.Until.Sub(top.Since).Round(time.Second)
		if len(top.Tenants) == 0 {
			fmt.Fprintf(opts.IO.ErrOut, "No data API requests in the last %s.\n", window)
			return nil
		}
		fmt.Fprintf(opts.IO.Out, "Since %s (%s), every daemon's count:\n", top.Since.Local().Format("15:04"), window)
		tbl := opts.IO.NewTable("tenant", "requests", "req/s", "errors", "throttled", "db time", "db %", "rows")
		for _, u := range top.Tenants {
			tbl.Row(u.Tenant, strconv.FormatInt(u.Requests, 10), strconv.FormatFloat(u.RequestsPerSecond, 'f', 2, 64),
				strconv.FormatInt(u.Errors, 10), strconv.FormatInt(u.Throttled, 10), humanDuration(u.DBTime),
				strconv.FormatFloat(u.DBShare*100, 'f', 1, 64), strconv.FormatInt(u.Rows, 10))
		}
		return tbl.Render()
	})
}
