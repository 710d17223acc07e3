package cptest

import (
	"fmt"
	"strings"

	"github.com/erpctl/erpctl/internal/ident"
)

// Checksums returns, for every table of schema schemaName, its row count and an md5 of its rows
// in id order (every column, as text): two schemas with equal checksums hold the same rows.
func (e *Env) Checksums(schemaName string) string {
	e.T.Helper()
	var b strings.Builder
	for _, t := range e.Tables(schemaName) {
		var n int
		var sum string
		q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(r::text, E'\n' ORDER BY r.id)), '') FROM %s r`, ident.Quote(schemaName, t))
		if err := e.DB.QueryRowContext(e.Ctx, q).Scan(&n, &sum); err != nil {
			e.T.Fatalf("checksum %s.%s: %v", schemaName, t, err)
		}
		fmt.Fprintf(&b, "%s %d %s\n", t, n, sum)
	}
	return b.String()
}

// Fill gives every built-in table of schemaName rows with NULLs, numerics, unicode and
// timestamps; tag makes one tenant's rows unlike another's.
func (e *Env) Fill(schemaName, tag string, stock int) {
	e.T.Helper()
	s := func(t string) string { return ident.Quote(schemaName, t) }
	e.Exec(fmt.Sprintf(`INSERT INTO %s (name, description) VALUES ($1, NULL), ($2, 'Ünïcödé ✓ '||$1)`, s("categories")), tag+"-tools", tag+"-toys")
	e.Exec(fmt.Sprintf(`INSERT INTO %s (sku, name, description, price, category_id, created_at, created_by)
		SELECT $1||'-'||g, 'Product '||g||' «'||$1||'»', CASE WHEN g %% 3 = 0 THEN NULL ELSE 'tab	and "quotes" \ back' END,
		(g * 1.37)::numeric(12,2), (SELECT min(id) FROM %s), '2024-02-29 23:59:59.123456+05:30', NULLIF($1, 'x')
		FROM generate_series(1, 20) g`, s("products"), s("categories")), tag)
	e.Exec(fmt.Sprintf(`INSERT INTO %s (code, name) VALUES ($1||'-main', 'Main'), ($1||'-east', '東')`, s("warehouses")), tag)
	e.Exec(fmt.Sprintf(`INSERT INTO %s (product_id, warehouse_id, quantity)
		SELECT p.id, w.id, (p.id * 7 + w.id) %% 100 FROM %s p CROSS JOIN %s w ORDER BY p.id, w.id LIMIT $1`,
		s("stock_items"), s("products"), s("warehouses")), stock)
}
