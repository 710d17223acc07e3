package controlplane_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// The pool is 16 connections unless the URL's pool_max_conns says otherwise (the data API's
// pool is a copy of it); Config.MaxConns, set by a program, wins over both.
func TestPoolSizeFromURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgtest.NewDB(t)
	withSize := func(n string) string {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("pool_max_conns", n)
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, c := range []struct {
		url  string
		max  int32
		want int32
	}{
		{base, 0, 16},
		{withSize("40"), 0, 40},
		{withSize("3"), 0, 3},
		{withSize("40"), 5, 5},
	} {
		p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: c.url, MaxConns: c.max, ModulesDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Pool().Config().MaxConns; got != c.want {
			t.Errorf("%s, MaxConns %d: pool of %d, want %d", c.url, c.max, got, c.want)
		}
		p.Close()
	}
}

// Connections live 5 to 10 minutes (1 idle) unless the URL says otherwise, so that no backend keeps
// the catalog caches of every tenant it ever served; they carry application_name erpctl.
func TestConnectionLifetimeFromURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgtest.NewDB(t)
	with := func(kv ...string) string {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		for i := 0; i < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, c := range []struct {
		url                    string
		lifetime, jitter, idle time.Duration
		app                    string
	}{
		{base, 5 * time.Minute, 5 * time.Minute, time.Minute, "erpctl"},
		{with("pool_max_conn_lifetime", "1h", "pool_max_conn_lifetime_jitter", "0s", "pool_max_conn_idle_time", "10m", "application_name", "mine"),
			time.Hour, 0, 10 * time.Minute, "mine"},
	} {
		p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: c.url, ModulesDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		cfg := p.Pool().Config()
		var app string
		if err := p.Pool().QueryRow(ctx, `SELECT current_setting('application_name')`).Scan(&app); err != nil {
			t.Fatal(err)
		}
		if cfg.MaxConnLifetime != c.lifetime || cfg.MaxConnLifetimeJitter != c.jitter || cfg.MaxConnIdleTime != c.idle || app != c.app {
			t.Errorf("%s: lifetime %s, jitter %s, idle %s, application_name %q",
				c.url, cfg.MaxConnLifetime, cfg.MaxConnLifetimeJitter, cfg.MaxConnIdleTime, app)
		}
		p.Close()
	}
}
