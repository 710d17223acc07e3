package daemon_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
)

// The listener says when it listens and when it stops: the data API keeps valid tokens longer
// only while it hears every revocation. Its connection killed, it says false, reconnects, says
// true again, and reports the tenant and token changes it may have missed meanwhile.
func TestListenerSaysWhenItListens(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	states := make(chan bool, 16)
	tokens := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(e.Ctx)
	l := daemon.NewListener(e.P.SessionPool(), daemon.ListenerConfig{
		OnConnected:   func(listening bool) { states <- listening },
		OnToken:       func() { tokens <- struct{}{} },
		MaxRetryDelay: 100 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-l.Done() }()
	next := func(want bool) {
		t.Helper()
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("listening = %v, want %v", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the listener never said listening = %v", want)
		}
	}
	next(true)
	waitListening(t, e)
	e.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`)
	next(false)
	next(true)
	select {
	case <-tokens:
	case <-time.After(10 * time.Second):
		t.Fatal("after reconnecting, the listener did not report the token changes it may have missed")
	}
}
