package schema_test

import (
	"context"
	"testing"

	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// The catalog's write stamp is what lets the daemon's full pass reuse the fleet's fingerprints:
// it must move with every change a fingerprint sees, in any schema, and stay put through what
// does not change a schema (rows, VACUUM, ANALYZE).
func TestCatalogStampMovesWithSchemaChangesOnly(t *testing.T) {
	t.Parallel()
	db, p := open(t)
	ctx := context.Background()
	reg, err := modules.Load("")
	if err != nil {
		t.Fatal(err)
	}
	applyModules(t, db, p, reg, "tenant_acme")
	applyModules(t, db, p, reg, "tenant_globex")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Each statement runs on the same session, which then reports its counts at once (they
	// would otherwise come within seconds).
	run := func(stmt string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if _, err := conn.ExecContext(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
	}
	stamp := func() string {
		t.Helper()
		s, err := schema.CatalogStamp(ctx, db)
		if err != nil || s == "" {
			t.Fatalf("catalog stamp: %q, %v", s, err)
		}
		return s
	}
	fps := func() map[string]string {
		t.Helper()
		m, err := schema.Fingerprints(ctx, db, "tenant_")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	run(`SELECT 1`) // the counts of what applyModules did
	before, beforeFPs := stamp(), fps()

	for _, stmt := range []string{
		`INSERT INTO tenant_acme.products (sku, name, price) VALUES ('a-1', 'Anvil', 10)`,
		`UPDATE tenant_acme.products SET price = 11`,
		`DELETE FROM tenant_globex.products`,
		`VACUUM ANALYZE tenant_acme.products`,
		`ANALYZE`,
	} {
		run(stmt)
		if got := stamp(); got != before {
			t.Fatalf("after %s the stamp moved: %q, was %q", stmt, got, before)
		}
	}
	if got := fps(); got["tenant_acme"] != beforeFPs["tenant_acme"] || got["tenant_globex"] != beforeFPs["tenant_globex"] {
		t.Fatalf("fingerprints changed with the rows: %v, were %v", got, beforeFPs)
	}

	// Each change a fingerprint sees moves the stamp, whichever schema it is in.
	for _, c := range []struct{ schema, stmt string }{
		{"tenant_globex", `ALTER TABLE tenant_globex.products ALTER COLUMN description SET NOT NULL`},
		{"tenant_acme", `ALTER TABLE tenant_acme.products ALTER COLUMN price DROP DEFAULT`},
		{"tenant_globex", `CREATE INDEX ON tenant_globex.products (name)`},
		{"tenant_acme", `ALTER TABLE tenant_acme.products DROP COLUMN description`},
	} {
		was, wasFPs := stamp(), fps()
		run(c.stmt)
		got, gotFPs := stamp(), fps()
		if got == was {
			t.Errorf("after %s the stamp stayed %q", c.stmt, got)
		}
		if gotFPs[c.schema] == wasFPs[c.schema] {
			t.Errorf("after %s the fingerprint of %s stayed the same", c.stmt, c.schema)
		}
	}

	// A session that does not count writes gives no stamp, so nothing is reused.
	if _, err := conn.ExecContext(ctx, `SET track_counts = off`); err != nil {
		t.Fatal(err)
	}
	if s, err := schema.CatalogStamp(ctx, conn); err != nil || s != "" {
		t.Fatalf("stamp with track_counts off: %q, %v", s, err)
	}
}
