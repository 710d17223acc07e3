package controlplane_test

import (
	"context"
	"net/url"
	"testing"

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
