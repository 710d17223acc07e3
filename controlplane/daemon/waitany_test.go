package daemon

import (
	"context"
	"errors"
	"testing"
)

// A service that stops because the daemon's context ended is no failure, even when waitAny sees
// it stop before it sees the context end (both ready, select picks either): a daemon stopped
// while it starts must exit cleanly every time, not with an error at random. A service that
// stops on its own, or fails, still ends the daemon with an error.
func TestWaitAnyAfterStop(t *testing.T) {
	t.Parallel()
	start := func(ctx context.Context, fn func(context.Context) error) *task {
		s := &task{fn: fn}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The daemon's services, stopped by a cancel that came while they were starting (before
	// waitAny): many, so that waitAny's watchers of some run on another CPU and report them
	// stopped before waitAny looks at the context.
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		var ss []service
		for range 50 {
			ss = append(ss, start(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil }))
		}
		cancel()
		for _, s := range ss {
			<-s.Done()
		}
		if err := waitAny(ctx, ss); err != nil {
			t.Fatalf("stopped as asked: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := start(ctx, func(context.Context) error { return nil })
	if err := waitAny(ctx, []service{s}); err == nil {
		t.Error("a service that stopped on its own: no error")
	}
	boom := errors.New("boom")
	s = start(ctx, func(context.Context) error { return boom })
	if err := waitAny(ctx, []service{s}); !errors.Is(err, boom) {
		t.Errorf("a failed service: %v", err)
	}
}
