package fair_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/fair"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
)

// Overrides are set per tenant, read back, announced to the daemons, and refused for a tenant
// that does not exist with nothing written.
func TestStoreOverrides(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	st := fair.NewStore(e.P.Pool())
	acme, globex := ident.MustParseSlug("acme"), ident.MustParseSlug("globex")

	conn, err := pgx.Connect(e.Ctx, e.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(e.Ctx)
	if _, err := conn.Exec(e.Ctx, "LISTEN "+fair.NotifyLimits); err != nil {
		t.Fatal(err)
	}

	rate := fair.Rate{Requests: 100, Per: time.Minute}
	two := 2
	if err := st.SetOverride(e.Ctx, acme, fair.Override{Rate: &rate, Concurrency: &two}); err != nil {
		t.Fatal(err)
	}
	n, err := conn.WaitForNotification(e.Ctx)
	if err != nil || n.Payload != "acme" {
		t.Fatalf("notification %v, %v", n, err)
	}
	none := fair.Rate{}
	if err := st.SetOverride(e.Ctx, globex, fair.Override{Rate: &none}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Overrides(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || *got["acme"].Rate != rate || *got["acme"].Concurrency != 2 || !got["globex"].Rate.IsZero() || got["globex"].Concurrency != nil {
		t.Fatalf("overrides %+v", got)
	}
	if o, err := st.Override(e.Ctx, globex); err != nil || o.Rate == nil || o.Concurrency != nil {
		t.Fatalf("globex: %+v, %v", o, err)
	}
	// Back to the defaults: the row goes.
	if err := st.SetOverride(e.Ctx, globex, fair.Override{}); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenant_limits WHERE tenant = 'globex'`); n != 0 {
		t.Fatalf("%d rows for globex", n)
	}

	nope := ident.MustParseSlug("nope")
	if err := st.SetOverride(e.Ctx, nope, fair.Override{Rate: &rate}); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}
	if _, err := st.Override(e.Ctx, nope); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenant_limits`); n != 1 {
		t.Fatalf("%d rows of limits, want acme's only", n)
	}
}

// Two daemons publish the usage they counted into the same minutes; Top sums them and sorts.
func TestStoreUsage(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	st := fair.NewStore(e.P.Pool())
	now := time.Now()
	d1 := []fair.Usage{{Tenant: "acme", Requests: 10, Errors: 1, DBTime: 30 * time.Millisecond, Rows: 10},
		{Tenant: "globex", Requests: 5, Throttled: 2, DBTime: 10 * time.Millisecond, Rows: 50}}
	d2 := []fair.Usage{{Tenant: "acme", Requests: 1, DBTime: 10 * time.Millisecond}}
	for _, us := range [][]fair.Usage{d1, d2} {
		if err := st.Publish(e.Ctx, now, us); err != nil {
			t.Fatal(err)
		}
	}
	// An hour ago: outside any window, and removed by the next publish.
	if err := st.Publish(e.Ctx, now.Add(-2*time.Hour), []fair.Usage{{Tenant: "initech", Requests: 1000}}); err != nil {
		t.Fatal(err)
	}
	top, err := st.Top(e.Ctx, 5*time.Minute, 10, "requests", labels.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Tenants) != 2 || top.Tenants[0].Tenant != "acme" || top.Tenants[0].Requests != 11 || top.Tenants[0].DBShare != 0.8 ||
		top.Tenants[1].Throttled != 2 || top.Tenants[1].Rows != 50 || top.Seconds < 300 {
		t.Fatalf("top %+v", top)
	}
	if top, err = st.Top(e.Ctx, time.Minute, 1, "rows", labels.Selector{}); err != nil || len(top.Tenants) != 1 || top.Tenants[0].Tenant != "globex" {
		t.Fatalf("top by rows: %+v, %v", top, err)
	}
	if err := st.Publish(e.Ctx, now, nil); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenant_usage WHERE tenant = 'initech'`); n != 0 {
		t.Fatalf("%d old rows kept", n)
	}
	if _, err := st.Top(e.Ctx, time.Minute, 1, "cpu", labels.Selector{}); !errors.Is(err, controlplane.ErrInvalid) {
		t.Fatalf("sort by cpu: %v", err)
	}
}
