package fair

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Scheduler. Every zero field takes its default.
type Config struct {
	// Slots is how many requests may run statements at once: the size of the data API's
	// connection pool. 0: 16.
	Slots int
	// Share is the part of Slots, and of Memory, that one tenant may hold at once (at least one
	// slot and RequestMemory). 0: 0.25.
	Share float64
	// Queue is how many of one tenant's requests may wait for a slot; the next one is throttled.
	// 0: 128.
	Queue int
	// QueueWait is how long a request waits for a slot before it is throttled. 0: 5s.
	QueueWait time.Duration
	// Memory bounds the bytes of answers the daemon holds: read from the database and not yet
	// taken by their clients. 0: 64 MiB.
	Memory int64
	// RequestMemory is how much of an answer one request reads before it writes it and gives
	// its connection back (a row larger than that is read whole). 0: 1 MiB.
	RequestMemory int64
	// Limits are every tenant's limits unless SetOverrides says otherwise.
	Limits Limits
	// Clock is the time; nil: time.Now.
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Slots <= 0 {
		c.Slots = 16
	}
	if c.Share <= 0 || c.Share > 1 {
		c.Share = 0.25
	}
	if c.Queue <= 0 {
		c.Queue = 128
	}
	if c.QueueWait <= 0 {
		c.QueueWait = 5 * time.Second
	}
	if c.RequestMemory <= 0 {
		c.RequestMemory = 1 << 20
	}
	if c.Memory <= 0 {
		c.Memory = 64 << 20
	}
	c.Memory = max(c.Memory, c.RequestMemory)
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Scheduler admits a daemon's data API requests per tenant and shares its connections and
// memory between tenants. A tenant's requests beyond its share wait in its own queue; when a
// slot frees, the waiting tenants are served in turn, so that a tenant with a long queue does
// not delay one with a short one. All its methods are safe for concurrent use.
type Scheduler struct {
	cfg       Config
	slotCap   int   // slots per tenant
	memCap    int64 // memory per tenant
	minGrant  int64 // the least memory worth a slot
	overrides atomic.Pointer[map[string]Override]

	mu      sync.Mutex
	tenants map[string]*tenant
	held    int   // slots in use
	mem     int64 // bytes reserved
	ring    []*tenant
	next    int // the ring's turn
	total   Usage
	reasons map[string]int64 // throttled requests by reason
	last    []Usage          // the usage Drain returned last
	lastDur time.Duration    // the time it covered
	drained time.Time
}

// tenant is one tenant's state: what it holds, who waits, its rate bucket and its usage since
// the last Drain.
type tenant struct {
	name     string
	inflight int
	held     int
	mem      int64
	queue    []*waiter
	inRing   bool
	tokens   float64
	filled   time.Time
	use      Usage
}

type waiter struct {
	q       *Request
	ready   chan struct{}
	granted bool
	more    bool // a continuation: not bounded by the queue's length
}

// New returns a scheduler.
func New(cfg Config) *Scheduler {
	cfg = cfg.withDefaults()
	s := &Scheduler{cfg: cfg, tenants: map[string]*tenant{}, reasons: map[string]int64{}}
	s.slotCap = max(1, int(float64(cfg.Slots)*cfg.Share))
	s.memCap = max(cfg.RequestMemory, int64(float64(cfg.Memory)*cfg.Share))
	s.minGrant = min(cfg.RequestMemory, 64<<10)
	s.drained = cfg.Clock()
	empty := map[string]Override{}
	s.overrides.Store(&empty)
	return s
}

// Config is the scheduler's configuration, defaults applied.
func (s *Scheduler) Config() Config { return s.cfg }

// SetOverrides replaces the per-tenant limits (the catalog's, see Store.Overrides).
func (s *Scheduler) SetOverrides(o map[string]Override) {
	if o == nil {
		o = map[string]Override{}
	}
	s.overrides.Store(&o)
}

// LimitsOf is tenant's limits: the default with its override applied.
func (s *Scheduler) LimitsOf(tenant string) Limits {
	if o, ok := (*s.overrides.Load())[tenant]; ok {
		return o.Apply(s.cfg.Limits)
	}
	return s.cfg.Limits
}

// Request is one data API request of a tenant, from its admission to its answer. Its zero
// value, and one admitted by a nil Scheduler, hold nothing and limit nothing.
type Request struct {
	s     *Scheduler
	t     *tenant
	slot  bool
	since time.Time
	mem   int64
	// Rows is how many rows the answer carries, for the tenant's usage.
	Rows int64
}

// Admit starts q as a request of the tenant name, or refuses it with a *Throttled when the tenant is at
// its rate or concurrency limit. An admitted request must end with Done.
func (s *Scheduler) Admit(q *Request, name string) error {
	*q = Request{}
	if s == nil {
		return nil
	}
	lim := s.LimitsOf(name)
	var now time.Time
	if !lim.Rate.IsZero() {
		now = s.cfg.Clock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[name]
	if t == nil {
		t = &tenant{name: name, use: Usage{Tenant: name}, filled: now}
		if !lim.Rate.IsZero() {
			t.tokens = float64(lim.Rate.Requests)
		}
		s.tenants[name] = t
	}
	t.use.Requests++
	s.total.Requests++
	if lim.Concurrency > 0 && t.inflight >= lim.Concurrency {
		return s.throttle(t, "concurrency", time.Second)
	}
	if !lim.Rate.IsZero() {
		burst := float64(lim.Rate.Requests)
		t.tokens = min(burst, t.tokens+now.Sub(t.filled).Seconds()*lim.Rate.perSecond())
		t.filled = now
		if t.tokens < 1 {
			wait := time.Duration((1 - t.tokens) / lim.Rate.perSecond() * float64(time.Second))
			return s.throttle(t, "rate", wait)
		}
		t.tokens--
	}
	t.inflight++
	q.s, q.t = s, t
	return nil
}

// throttle counts a refusal; s.mu is held.
func (s *Scheduler) throttle(t *tenant, reason string, wait time.Duration) *Throttled {
	t.use.Throttled++
	s.total.Throttled++
	s.reasons[reason]++
	return &Throttled{Reason: reason, Wait: wait}
}

// Acquire gives q a slot before its first statement: at once when its tenant is within its
// share, else after a wait in the tenant's queue. It fails with a *Throttled when the queue is
// full or the wait too long, or with ctx's error. Holding a slot already, it does nothing.
func (q *Request) Acquire(ctx context.Context) error { return q.acquire(ctx, false) }

// Continue is Acquire for the next part of an answer already begun: its wait is not bounded by
// the length of the tenant's queue, since the request is half answered.
func (q *Request) Continue(ctx context.Context) error { return q.acquire(ctx, true) }

func (q *Request) acquire(ctx context.Context, more bool) error {
	if q.s == nil || q.slot {
		return nil
	}
	s, t := q.s, q.t
	s.mu.Lock()
	if len(t.queue) == 0 && s.eligible(t) {
		s.grant(q)
		s.mu.Unlock()
		return nil
	}
	if !more && len(t.queue) >= s.cfg.Queue {
		err := s.throttle(t, "queue", time.Second)
		s.mu.Unlock()
		return err
	}
	w := &waiter{q: q, ready: make(chan struct{}, 1), more: more}
	t.queue = append(t.queue, w)
	if !t.inRing {
		t.inRing = true
		s.ring = append(s.ring, t)
	}
	s.mu.Unlock()

	timer := time.NewTimer(s.cfg.QueueWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = &Throttled{Reason: "wait", Wait: time.Second}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		return nil // granted as it gave up: take it
	}
	t.queue = slices.DeleteFunc(t.queue, func(x *waiter) bool { return x == w })
	if th, ok := err.(*Throttled); ok {
		err = s.throttle(t, th.Reason, th.Wait)
	}
	return err
}

// eligible reports whether t may take a slot now; s.mu is held.
func (s *Scheduler) eligible(t *tenant) bool {
	return s.held < s.cfg.Slots && t.held < s.slotCap &&
		s.memCap-t.mem >= s.minGrant && s.cfg.Memory-s.mem >= s.minGrant
}

// grant gives q a slot and the memory to read its answer into; s.mu is held.
func (s *Scheduler) grant(q *Request) {
	t := q.t
	t.held++
	s.held++
	q.slot = true
	q.since = s.cfg.Clock()
	r := min(s.cfg.RequestMemory, s.memCap-t.mem, s.cfg.Memory-s.mem)
	if r > q.mem {
		s.reserve(q, r)
	}
}

// reserve sets q's reservation to n bytes; s.mu is held.
func (s *Scheduler) reserve(q *Request, n int64) {
	d := n - q.mem
	q.mem, q.t.mem, s.mem = n, q.t.mem+d, s.mem+d
}

// Budget is how many bytes of answer q may read before it writes them: the memory it holds.
func (q *Request) Budget() int64 {
	if q.s == nil {
		return 1 << 20
	}
	return max(q.mem, 1)
}

// Release ends q's database work for now: its slot goes to the next waiting request, and q
// keeps keep bytes of memory (the answer it is about to write) until Done or its next Release.
func (q *Request) Release(keep int64) {
	if q.s == nil {
		return
	}
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseSlot(q)
	s.reserve(q, keep)
	s.dispatch()
}

// releaseSlot gives q's slot back and counts the time it held it; s.mu is held.
func (s *Scheduler) releaseSlot(q *Request) {
	if !q.slot {
		return
	}
	d := s.cfg.Clock().Sub(q.since)
	q.slot = false
	q.t.held--
	s.held--
	q.t.use.DBTime += d
	s.total.DBTime += d
}

// Done ends q, answered with status: it gives back what q holds and counts its usage.
func (q *Request) Done(status int) {
	if q.s == nil {
		return
	}
	s, t := q.s, q.t
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseSlot(q)
	s.reserve(q, 0)
	t.inflight--
	t.use.Rows += q.Rows
	s.total.Rows += q.Rows
	if status >= 500 {
		t.use.Errors++
		s.total.Errors++
	}
	q.s = nil
	s.dispatch()
}

// dispatch hands free slots to waiting tenants in turn; s.mu is held.
func (s *Scheduler) dispatch() {
	s.ring = slices.DeleteFunc(s.ring, func(t *tenant) bool {
		t.inRing = len(t.queue) > 0
		return !t.inRing
	})
	for s.held < s.cfg.Slots {
		served := false
		for range len(s.ring) {
			if s.next >= len(s.ring) {
				s.next = 0
			}
			t := s.ring[s.next]
			s.next++
			if len(t.queue) == 0 || !s.eligible(t) {
				continue
			}
			w := t.queue[0]
			t.queue = t.queue[1:]
			w.granted = true
			s.grant(w.q)
			w.ready <- struct{}{}
			served = true
			break
		}
		if !served {
			return
		}
	}
}

// Stats is what a scheduler holds now, for /metrics.
type Stats struct {
	Slots, SlotsInUse int
	Waiting           int   // requests waiting for a slot
	Memory, MemInUse  int64 // bytes
	Tenants           int   // tenants with state: active, or limited, since the last Drain
	Total             Usage // every request since the start
	Throttled         map[string]int64
}

// Stats reports the scheduler's state.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Slots: s.cfg.Slots, SlotsInUse: s.held, Memory: s.cfg.Memory, MemInUse: s.mem,
		Tenants: len(s.tenants), Total: s.total, Throttled: map[string]int64{}}
	for _, t := range s.ring {
		st.Waiting += len(t.queue)
	}
	for k, v := range s.reasons {
		st.Throttled[k] = v
	}
	return st
}
