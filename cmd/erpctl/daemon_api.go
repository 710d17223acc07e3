package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/fair"
)

// apiFlags are the daemon's flags that share the data API between tenants.
type apiFlags struct {
	StatementTimeout time.Duration
	ConnTenants      int
	Share            float64
	Queue            int
	QueueWait        time.Duration
	Memory           string
	Rate             string
	Concurrency      int

	memory int64
	rate   fair.Rate
}

func (f *apiFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.DurationVar(&f.StatementTimeout, "api-statement-timeout", controlplane.DefaultAPIStatementTimeout,
		"how long one statement of the data API may run; past it the request gets a 503")
	fl.IntVar(&f.ConnTenants, "api-conn-tenants", controlplane.DefaultAPIConnTenants,
		"tenants one data API connection serves before a new one replaces it: each PostgreSQL backend keeps about 20 kB for every table it has served until it ends; 0: no bound")
	fl.Float64Var(&f.Share, "api-tenant-share", 0.25, "the part of the data API's connections, and of --api-memory, one tenant may hold at once (0 to 1)")
	fl.IntVar(&f.Queue, "api-tenant-queue", 128, "requests of one tenant that may wait for its share; the next one gets a 429")
	fl.DurationVar(&f.QueueWait, "api-queue-wait", 5*time.Second, "how long a request waits for its tenant's share before it gets a 429")
	fl.StringVar(&f.Memory, "api-memory", "64MiB", "bytes of answers the daemon holds while their clients read them (KiB, MiB, GiB)")
	fl.StringVar(&f.Rate, "tenant-rate", "none", `every tenant's request rate limit, as Django REST framework writes it: "100/minute", "10/second" (erpctl tenant limits sets one per tenant)`)
	fl.IntVar(&f.Concurrency, "tenant-concurrency", 0, "every tenant's limit of requests in progress at once; 0: none (erpctl tenant limits sets one per tenant)")
}

func (f *apiFlags) validate() error {
	switch {
	case f.StatementTimeout < time.Millisecond:
		return usageErrorf("--api-statement-timeout must be at least 1ms, got %s", f.StatementTimeout)
	case f.ConnTenants < 0:
		return usageErrorf("--api-conn-tenants must be 0 (no bound) or more, got %d", f.ConnTenants)
	case !(f.Share > 0 && f.Share <= 1):
		return usageErrorf("--api-tenant-share must be more than 0 and at most 1, got %v", f.Share)
	case f.Queue < 1:
		return usageErrorf("--api-tenant-queue must be at least 1, got %d", f.Queue)
	case f.QueueWait <= 0:
		return usageErrorf("--api-queue-wait must be greater than 0, got %s", f.QueueWait)
	case f.Concurrency < 0:
		return usageErrorf("--tenant-concurrency must be 0 (none) or more, got %d", f.Concurrency)
	}
	var err error
	if f.memory, err = parseBytes(f.Memory); err != nil || f.memory < 1<<20 {
		return usageErrorf("--api-memory %q: give a size of at least 1MiB, e.g. 64MiB or 1GiB", f.Memory)
	}
	if f.Rate != "none" {
		if f.rate, err = fair.ParseRate(f.Rate); err != nil {
			return usageErrorf("--tenant-rate: %s; or none for no limit", err)
		}
	}
	return nil
}

func (f *apiFlags) fairConfig() fair.Config {
	return fair.Config{Share: f.Share, Queue: f.Queue, QueueWait: f.QueueWait, Memory: f.memory,
		Limits: fair.Limits{Rate: f.rate, Concurrency: f.Concurrency}}
}

// connTenants is --api-conn-tenants as controlplane.APIOptions takes it.
func (f *apiFlags) connTenants() int {
	if f.ConnTenants == 0 {
		return -1
	}
	return f.ConnTenants
}

// parseBytes reads a size: bytes, or a number of KiB, MiB or GiB.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}, {"", 1}}
	s = strings.TrimSpace(s)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 || n > (1<<62)/u.n {
				return 0, fmt.Errorf("invalid size %q", s)
			}
			return n * u.n, nil
		}
	}
	return 0, fmt.Errorf("invalid size %q", s)
}
