package controlplane_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// queryLog is a pgx tracer that keeps the queries sent while it is on.
type queryLog struct {
	mu      sync.Mutex
	on      bool
	queries []pgtest.Query
}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.on {
		l.queries = append(l.queries, pgtest.Query{SQL: d.SQL, Args: d.Args})
	}
	return ctx
}

func (l *queryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// during returns the queries sent while fn ran.
func (l *queryLog) during(fn func()) []pgtest.Query {
	l.mu.Lock()
	l.on, l.queries = true, nil
	l.mu.Unlock()
	fn()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = false
	return l.queries
}

// TestRepairReadsOnlyTheTenantsSchema repairs a table dropped by hand in one tenant alone in the
// database, and in another beside 100 more schemas: the repair reads no more of the catalog for
// them (counted as in the schema package's test, by what its queries read), and PostgreSQL
// prints the desired state back once for both.
func TestRepairReadsOnlyTheTenantsSchema(t *testing.T) {
	t.Parallel()
	log := &queryLog{}
	e := cptest.NewWith(t, controlplane.Config{Tracer: log})
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_globex.categories (name) VALUES ('kept')`)
	repair := func(slug string) int64 {
		t.Helper()
		e.Exec(`DROP TABLE tenant_` + slug + `.stock_items`)
		var res *controlplane.Result
		queries := log.during(func() {
			var err error
			if res, err = e.P.Reconcile(e.Ctx, ident.MustParseSlug(slug), controlplane.ReconcileOptions{Cause: "test"}); err != nil {
				t.Fatal(err)
			}
		})
		if res.Action != controlplane.ActionApplied {
			t.Fatalf("repair of %s: %+v", slug, res)
		}
		e.DebugHealthy(slug)
		reads, err := pgtest.CatalogReads(e.Ctx, e.DB, queries)
		if err != nil {
			t.Fatal(err)
		}
		return reads
	}
	alone := repair("acme")
	if err := pgtest.AddNoise(e.Ctx, e.DB, 100); err != nil {
		t.Fatal(err)
	}
	beside := repair("globex")
	noise := e.Count(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'noise\_%'`)
	t.Logf("catalog rows a repair read: %d alone, %d beside %d more relations", alone, beside, noise)
	if beside-alone > int64(noise/10) {
		t.Errorf("a repair read %d catalog rows beside 100 other schemas, against %d alone", beside, alone)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_globex.categories`); n != 1 {
		t.Fatalf("globex's rows after its repair: %d", n)
	}
	if n, _ := e.P.NormalizedStates(); n != 1 {
		t.Fatalf("%d desired states normalised for two repairs of one desired state", n)
	}
}
