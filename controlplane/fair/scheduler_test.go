package fair_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/fair"
)

// admit admits a request of tenant or fails the test.
func admit(t *testing.T, s *fair.Scheduler, tenant string) *fair.Request {
	t.Helper()
	q := &fair.Request{}
	if err := s.Admit(q, tenant); err != nil {
		t.Fatalf("admit %s: %v", tenant, err)
	}
	return q
}

// acquireAsync starts q's Acquire and returns where its result arrives.
func acquireAsync(ctx context.Context, q *fair.Request) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- q.Acquire(ctx) }()
	return ch
}

// waitQueued waits until n requests wait for a slot.
func waitQueued(t *testing.T, s *fair.Scheduler, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Waiting != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait, want %d", s.Stats().Waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func throttledFor(t *testing.T, err error, reason string) *fair.Throttled {
	t.Helper()
	th, ok := fair.AsThrottled(err)
	if !ok || th.Reason != reason {
		t.Fatalf("got %v, want throttled for %s", err, reason)
	}
	return th
}

// One tenant holds at most its share of the slots; its next request waits in its own queue while
// another tenant's go ahead, and gets the first slot its tenant gives back. Past the queue's
// length a request is throttled at once.
func TestShareAndQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := fair.New(fair.Config{Slots: 4, Share: 0.5, Queue: 1, QueueWait: time.Minute})
	a1, a2, a3, a4 := admit(t, s, "acme"), admit(t, s, "acme"), admit(t, s, "acme"), admit(t, s, "acme")
	for _, q := range []*fair.Request{a1, a2} {
		if err := q.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waiting := acquireAsync(ctx, a3)
	waitQueued(t, s, 1)
	throttledFor(t, a4.Acquire(ctx), "queue")
	a4.Done(429)

	b := admit(t, s, "globex")
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("globex waited behind acme: %v", err)
	}
	if st := s.Stats(); st.SlotsInUse != 3 {
		t.Fatalf("%d slots in use, want 3", st.SlotsInUse)
	}
	a1.Release(0)
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	for _, q := range []*fair.Request{a1, a2, a3, b} {
		q.Done(200)
	}
	if st := s.Stats(); st.SlotsInUse != 0 || st.MemInUse != 0 || st.Waiting != 0 {
		t.Fatalf("after every request: %+v", st)
	}
	use := s.Drain()
	if len(use) != 2 || use[0].Tenant != "acme" || use[0].Requests != 4 || use[0].Throttled != 1 || use[1].Requests != 1 {
		t.Fatalf("usage %+v", use)
	}
}

// A request that waits longer than QueueWait is throttled, and one whose client leaves stops
// waiting; neither holds anything after.
func TestQueueWaitAndCancel(t *testing.T) {
	t.Parallel()
	s := fair.New(fair.Config{Slots: 1, QueueWait: 50 * time.Millisecond})
	holder := admit(t, s, "acme")
	if err := holder.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := admit(t, s, "acme")
	th := throttledFor(t, q.Acquire(context.Background()), "wait")
	if th.Seconds() != 1 || th.Detail() != "Request was throttled. Expected available in 1 second." {
		t.Fatalf("throttled: %d s, %q", th.Seconds(), th.Detail())
	}
	q.Done(429)
	ctx, cancel := context.WithCancel(context.Background())
	q = admit(t, s, "globex")
	ch := acquireAsync(ctx, q)
	waitQueued(t, s, 1)
	cancel()
	if err := <-ch; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	q.Done(503)
	holder.Done(200)
	if st := s.Stats(); st.SlotsInUse != 0 || st.Waiting != 0 || st.MemInUse != 0 {
		t.Fatalf("after every request: %+v", st)
	}
}

// When a slot frees, the waiting tenants take turns: a tenant that queued three requests does
// not make one that queued one wait for all three.
func TestTenantsTakeTurns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := fair.New(fair.Config{Slots: 1, Share: 1, QueueWait: time.Minute})
	holder := admit(t, s, "acme")
	if err := holder.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queue := func(tenant string, n int) {
		q := admit(t, s, tenant)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.Acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, tenant)
			mu.Unlock()
			q.Done(200)
		}()
		waitQueued(t, s, n)
	}
	queue("acme", 1)
	queue("acme", 2)
	queue("acme", 3)
	queue("globex", 4)
	holder.Done(200)
	wg.Wait()
	if got := strings.Join(order, ","); got != "acme,globex,acme,acme" {
		t.Fatalf("served %s, want acme,globex,acme,acme", got)
	}
}

// A tenant's answers waiting for their clients hold at most its share of the memory: its next
// request waits even with slots free, another tenant's goes ahead.
func TestMemoryShare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := fair.New(fair.Config{Slots: 8, Share: 0.5, Memory: 2 << 20, RequestMemory: 1 << 20, QueueWait: time.Minute})
	slow := admit(t, s, "acme")
	if err := slow.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if b := slow.Budget(); b != 1<<20 {
		t.Fatalf("budget %d", b)
	}
	slow.Release(1 << 20) // its answer waits for a client that does not read
	next := admit(t, s, "acme")
	waiting := acquireAsync(ctx, next)
	waitQueued(t, s, 1)
	other := admit(t, s, "globex")
	if err := other.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	other.Done(200)
	slow.Done(200)
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	next.Done(200)
	if st := s.Stats(); st.MemInUse != 0 || st.SlotsInUse != 0 {
		t.Fatalf("after every request: %+v", st)
	}
}

// Rate and concurrency limits, a default for every tenant and an override for one, answered as
// DRF's throttles answer.
func TestLimits(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	s := fair.New(fair.Config{Limits: fair.Limits{Rate: fair.Rate{Requests: 2, Per: time.Minute}},
		Clock: func() time.Time { return now }})
	none, one := fair.Rate{}, 1
	s.SetOverrides(map[string]fair.Override{"globex": {Rate: &none, Concurrency: &one}})

	for range 2 {
		admit(t, s, "acme").Done(200)
	}
	q := &fair.Request{}
	th := throttledFor(t, s.Admit(q, "acme"), "rate")
	if th.Seconds() != 30 || th.Detail() != "Request was throttled. Expected available in 30 seconds." {
		t.Fatalf("throttled: %d s, %q", th.Seconds(), th.Detail())
	}
	now = now.Add(30 * time.Second)
	admit(t, s, "acme").Done(200)

	g := admit(t, s, "globex") // no rate limit, one at a time
	throttledFor(t, s.Admit(&fair.Request{}, "globex"), "concurrency")
	g.Done(200)
	for range 5 {
		admit(t, s, "globex").Done(200)
	}
	use := s.Drain()
	if len(use) != 2 || use[0].Requests != 4 || use[0].Throttled != 1 || use[1].Requests != 7 || use[1].Throttled != 1 {
		t.Fatalf("usage %+v", use)
	}
	if top, _ := s.Top(1); len(top) != 1 || top[0].Tenant != "globex" {
		t.Fatalf("top %+v", top)
	}
}

// A nil scheduler (the API without fairness) admits everything and holds nothing.
func TestNilScheduler(t *testing.T) {
	t.Parallel()
	var s *fair.Scheduler
	q := &fair.Request{}
	if err := s.Admit(q, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := q.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	q.Release(0)
	q.Done(200)
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"100/minute": "100/minute", "10/s": "10/second", " 5 / Hour ": "5/hour", "1/d": "1/day", "3/sec": "3/second"} {
		r, err := fair.ParseRate(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for in, want := range map[string]string{"": "N/period", "100": "N/period", "x/minute": "whole number", "0/s": "whole number",
		"-1/s": "whole number", "10/fortnight": "the period is", "10/": "the period is"} {
		if _, err := fair.ParseRate(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRate(%q) = %v; want an error saying %q", in, err, want)
		}
	}
}

// BenchmarkRequest is the bookkeeping of one request that runs one statement: admission, a slot,
// its release before the answer is written, and its end.
func BenchmarkRequest(b *testing.B) {
	s := fair.New(fair.Config{})
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		var q fair.Request
		for pb.Next() {
			if err := s.Admit(&q, "acme"); err != nil {
				b.Fatal(err)
			}
			if err := q.Acquire(ctx); err != nil {
				b.Fatal(err)
			}
			q.Rows++
			q.Release(512)
			q.Done(200)
		}
	})
}
