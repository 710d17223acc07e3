package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane/fair"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// TenantLimitsOptions are the inputs of tenant limits.
type TenantLimitsOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug        ident.Slug // zero: every tenant with limits of its own
	Rate        string     // --rate as given; "" when not given
	Concurrency string     // --concurrency as given; "" when not given
	Reset       bool

	change func(*fair.Override) // what the flags change
}

// limitsView is one tenant's limits as tenant limits prints them: null is the daemon's default
// (--tenant-rate, --tenant-concurrency), "none" and 0 no limit.
type limitsView struct {
	Tenant      string  `json:"tenant"`
	Rate        *string `json:"rate"`
	Concurrency *int    `json:"concurrency"`
}

// NewCmdTenantLimits parses tenant limits; runF replaces the run in tests.
func NewCmdTenantLimits(f *Factory, runF func(*TenantLimitsOptions) error) *cobra.Command {
	opts := &TenantLimitsOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "limits [SLUG] [--rate N/period|none|default] [--concurrency N|none|default] [--reset]",
		Short: "Show or set a tenant's data API limits: request rate and requests in progress",
		Long: `Show or set a tenant's limits in the data API, which override the daemon's defaults
(erpctl daemon --tenant-rate, --tenant-concurrency). Past a limit, a request gets 429 with
Retry-After, as Django REST framework's throttles answer. Every daemon applies a change at once.

  erpctl tenant limits                                 every tenant with limits of its own
  erpctl tenant limits acme                            acme's
  erpctl tenant limits acme --rate 100/minute --concurrency 10
  erpctl tenant limits acme --rate none                no rate limit for acme, whatever the default
  erpctl tenant limits acme --rate default             acme's rate back to the daemon's default
  erpctl tenant limits acme --reset                    both back to the defaults

A rate is DRF's notation: N/second, N/minute, N/hour or N/day (or N/s, N/m, N/h, N/d): a burst of
N requests at once, then N per period. Each daemon counts on its own: behind a load balancer of
several daemons, a tenant gets the rate from each.`,
		Args: maxArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if len(args) == 1 {
				slug, err := parseSlug(args[0])
				if err != nil {
					return err
				}
				opts.Slug = slug
			}
			fl := cmd.Flags()
			setting := fl.Changed("rate") || fl.Changed("concurrency")
			switch {
			case opts.Reset && setting:
				return usageErrorf("--reset puts every limit back to the default: give it alone, without --rate or --concurrency")
			case (opts.Reset || setting) && opts.Slug.String() == "":
				return usageErrorf("give the tenant whose limits to set (erpctl tenant limits SLUG --rate ...)")
			}
			var err error
			if opts.change, err = limitsChange(opts, fl.Changed("rate"), fl.Changed("concurrency")); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return tenantLimitsRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Rate, "rate", "", `requests per period ("100/minute"), "none" for no limit, or "default" for the daemon's`)
	fl.StringVar(&opts.Concurrency, "concurrency", "", `requests in progress at once, "none" for no limit, or "default" for the daemon's`)
	fl.BoolVar(&opts.Reset, "reset", false, "put every limit of the tenant back to the daemon's defaults")
	return cmd
}

// limitsChange parses the flags into the change they make; nil when they make none.
func limitsChange(opts *TenantLimitsOptions, rateGiven, concGiven bool) (func(*fair.Override), error) {
	if opts.Reset {
		return func(o *fair.Override) { *o = fair.Override{} }, nil
	}
	if !rateGiven && !concGiven {
		return nil, nil
	}
	var rate *fair.Rate
	if rateGiven {
		switch opts.Rate {
		case "default":
		case "none":
			rate = &fair.Rate{}
		default:
			r, err := fair.ParseRate(opts.Rate)
			if err != nil {
				return nil, usageErrorf("--rate: %s; or none for no limit, or default for the daemon's", err)
			}
			rate = &r
		}
	}
	var conc *int
	if concGiven {
		switch opts.Concurrency {
		case "default":
		case "none":
			conc = new(int)
		default:
			n, err := strconv.Atoi(opts.Concurrency)
			if err != nil || n < 1 || n > 1_000_000 {
				return nil, usageErrorf("--concurrency %q: give a number of requests from 1 to 1000000, none, or default", opts.Concurrency)
			}
			conc = &n
		}
	}
	return func(o *fair.Override) {
		if rateGiven {
			o.Rate = rate
		}
		if concGiven {
			o.Concurrency = conc
		}
	}, nil
}

func tenantLimitsRun(ctx context.Context, opts *TenantLimitsOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	st := fair.NewStore(p.Pool())
	if opts.Slug.String() == "" {
		all, err := st.Overrides(ctx)
		if err != nil {
			return err
		}
		views := []limitsView{}
		for _, t := range slices.Sorted(maps.Keys(all)) {
			views = append(views, viewOf(t, all[t]))
		}
		return opts.IO.Render(opts.Format, views, func() error {
			if len(views) == 0 {
				fmt.Fprintln(opts.IO.ErrOut, "No tenant has limits of its own: every tenant has the daemon's (--tenant-rate, --tenant-concurrency).")
				return nil
			}
			return printLimits(opts.IO, views...)
		})
	}
	o, err := st.Override(ctx, opts.Slug)
	if err != nil {
		return err
	}
	if opts.change != nil {
		opts.change(&o)
		if err := st.SetOverride(ctx, opts.Slug, o); err != nil {
			return err
		}
	}
	v := viewOf(opts.Slug.String(), o)
	return opts.IO.Render(opts.Format, v, func() error { return printLimits(opts.IO, v) })
}

func viewOf(tenant string, o fair.Override) limitsView {
	v := limitsView{Tenant: tenant, Concurrency: o.Concurrency}
	if o.Rate != nil {
		r := o.Rate.String()
		v.Rate = &r
	}
	return v
}

func printLimits(io *term.IOStreams, views ...limitsView) error {
	tbl := io.NewTable("tenant", "rate", "concurrency")
	for _, v := range views {
		rate, conc := "default", "default"
		if v.Rate != nil {
			rate = *v.Rate
		}
		if v.Concurrency != nil {
			conc = "none"
			if *v.Concurrency > 0 {
				conc = strconv.Itoa(*v.Concurrency)
			}
		}
		tbl.Row(v.Tenant, rate, conc)
	}
	return tbl.Render()
}
