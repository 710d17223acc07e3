package fair

import (
	"cmp"
	"slices"
	"time"
)

// Usage is what a tenant's requests used over some time.
type Usage struct {
	Tenant    string        `json:"tenant"`
	Requests  int64         `json:"requests"`  // every authenticated request, throttled ones included
	Errors    int64         `json:"errors"`    // answered 5xx
	Throttled int64         `json:"throttled"` // answered 429
	DBTime    time.Duration `json:"-"`         // time holding a database connection
	Rows      int64         `json:"rows"`      // rows returned
}

func (u *Usage) add(o Usage) {
	u.Requests += o.Requests
	u.Errors += o.Errors
	u.Throttled += o.Throttled
	u.DBTime += o.DBTime
	u.Rows += o.Rows
}

// Drain returns each tenant's usage since the last Drain (tenants that used nothing left out),
// sorted by tenant, and starts counting again. It forgets the tenants that hold nothing and whose
// rate bucket is full, so that the scheduler's memory follows the active tenants, not all of them.
func (s *Scheduler) Drain() []Usage {
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Usage
	for name, t := range s.tenants {
		if t.use != (Usage{Tenant: name}) {
			out = append(out, t.use)
			t.use = Usage{Tenant: name}
		}
		if t.inflight == 0 && t.held == 0 && t.mem == 0 && len(t.queue) == 0 && s.bucketFull(t, now) {
			delete(s.tenants, name)
		}
	}
	slices.SortFunc(out, func(a, b Usage) int { return cmp.Compare(a.Tenant, b.Tenant) })
	s.last, s.lastDur, s.drained = out, now.Sub(s.drained), now
	return out
}

// bucketFull reports whether t's rate bucket would be full now, so that forgetting it (a new
// bucket starts full) gives the tenant nothing it would not have had; s.mu is held.
func (s *Scheduler) bucketFull(t *tenant, now time.Time) bool {
	lim := s.LimitsOf(t.name)
	if lim.Rate.IsZero() {
		return true
	}
	return t.tokens+now.Sub(t.filled).Seconds()*lim.Rate.perSecond() >= float64(lim.Rate.Requests)
}

// Top is the n tenants with the most requests in the period the last Drain covered (then the
// most database time), and how long that period was.
func (s *Scheduler) Top(n int) ([]Usage, time.Duration) {
	s.mu.Lock()
	last, d := s.last, s.lastDur
	s.mu.Unlock()
	top := slices.Clone(last)
	SortUsage(top, "requests")
	return top[:min(n, len(top))], d
}

// SortKeys are the measures usage is sorted by.
var SortKeys = []string{"requests", "errors", "throttled", "db", "rows"}

// SortUsage sorts us by key (one of SortKeys), most first, then by tenant.
func SortUsage(us []Usage, key string) {
	measure := func(u Usage) int64 {
		switch key {
		case "errors":
			return u.Errors
		case "throttled":
			return u.Throttled
		case "db":
			return int64(u.DBTime)
		case "rows":
			return u.Rows
		}
		return u.Requests
	}
	slices.SortFunc(us, func(a, b Usage) int {
		return cmp.Or(cmp.Compare(measure(b), measure(a)), cmp.Compare(b.DBTime, a.DBTime), cmp.Compare(a.Tenant, b.Tenant))
	})
}
