// Package fair keeps one tenant from starving the others in the data API: it admits each
// request against the tenant's optional rate and concurrency limits, gives each tenant at most a
// share of the API's database connections and of the memory its answers hold while they wait
// for their clients (the rest of the tenant's requests wait in a bounded queue of their own), and
// counts each tenant's usage: requests, errors, throttled requests, database time and rows.
//
// The Scheduler does that in memory, per daemon. The Store keeps in the catalog what several
// daemons share: the limits set per tenant (erpctl tenant limits) and the usage each daemon
// publishes in one-minute buckets (erpctl tenant top).
package fair

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a request rate in Django REST framework's notation: Requests per Per ("100/minute").
// The zero Rate is no limit.
type Rate struct {
	Requests int
	Per      time.Duration
}

// periods are the periods a rate may name, as DRF's throttles spell them.
var periods = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "second": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute,
	"h": time.Hour, "hour": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour,
}

// ParseRate reads "N/period" (period: second, minute, hour or day, or s, m, h, d), as DRF's
// DEFAULT_THROTTLE_RATES are written.
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: write it as N/period, e.g. 100/minute or 10/s", s)
	}
	d, ok := periods[strings.ToLower(strings.TrimSpace(per))]
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: the period is second, minute, hour or day (or s, m, h, d)", s)
	}
	requests, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || requests < 1 || requests > 1_000_000_000 {
		return Rate{}, fmt.Errorf("rate %q: the number of requests is a whole number from 1 to 1000000000", s)
	}
	return Rate{Requests: requests, Per: d}, nil
}

// IsZero reports whether r is no limit.
func (r Rate) IsZero() bool { return r.Requests == 0 }

// String is r as ParseRate reads it: "100/minute".
func (r Rate) String() string {
	if r.IsZero() {
		return "none"
	}
	name := map[time.Duration]string{time.Second: "second", time.Minute: "minute", time.Hour: "hour", 24 * time.Hour: "day"}[r.Per]
	if name == "" {
		name = r.Per.String()
	}
	return strconv.Itoa(r.Requests) + "/" + name
}

// perSecond is the rate's refill per second.
func (r Rate) perSecond() float64 { return float64(r.Requests) / r.Per.Seconds() }

// Limits are a tenant's optional limits. The zero Limits limit nothing.
type Limits struct {
	// Rate bounds the tenant's requests over time, as DRF's throttles do: a burst of Requests at
	// once, then Requests per Per.
	Rate Rate
	// Concurrency bounds the tenant's requests in progress at once; 0: none.
	Concurrency int
}

// Override is what the catalog says of one tenant's limits: each nil field is the daemon's
// default, each set one replaces it (a zero Rate or a Concurrency of 0 meaning none).
type Override struct {
	Rate        *Rate
	Concurrency *int
}

// IsZero reports whether o overrides nothing.
func (o Override) IsZero() bool { return o.Rate == nil && o.Concurrency == nil }

// Apply is def with o's settings in place of its own.
func (o Override) Apply(def Limits) Limits {
	if o.Rate != nil {
		def.Rate = *o.Rate
	}
	if o.Concurrency != nil {
		def.Concurrency = *o.Concurrency
	}
	return def
}

// Throttled is a request refused for its tenant's limits or its share: DRF's 429.
type Throttled struct {
	// Reason is what refused it: "rate" or "concurrency" (the tenant's limits), "queue" (its
	// queue for its share was full) or "wait" (it waited in that queue as long as allowed). The
	// share is of the connections and of the memory of answers alike.
	Reason string
	// Wait is when the request may succeed again, as Retry-After says it.
	Wait time.Duration
}

func (t *Throttled) Error() string {
	return fmt.Sprintf("request throttled (%s); expected available in %s", t.Reason, t.Wait)
}

// AsThrottled finds a Throttled in err's chain.
func AsThrottled(err error) (*Throttled, bool) {
	var t *Throttled
	ok := errors.As(err, &t)
	return t, ok
}

// Seconds is Wait in whole seconds, rounded up, at least 1: Retry-After's value and DRF's N.
func (t *Throttled) Seconds() int {
	s := int((t.Wait + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Detail is DRF's message for a throttled request.
func (t *Throttled) Detail() string {
	n := t.Seconds()
	if n == 1 {
		return "Request was throttled. Expected available in 1 second."
	}
	return "Request was throttled. Expected available in " + strconv.Itoa(n) + " seconds."
}
