package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

const (
	journalRows  = 20 // rows per tenant in the table the evolution changes
	journalSteps = 50 // migration steps recorded per tenant for the no-op pass
)

// journalModule is the module the evolution scenario changes, one version after another.
const journalV1 = `schema "tenant" {}
table "journal" {
  schema = schema.tenant
  column "title" {
    type = text
  }
  column "notes" {
    type = text
    null = true
  }
}
`

// evolutionStep is one module version of the scenario, beside the raw SQL that does the same in
// new sessions (rawSQL): undo takes erpctl's change off a tenant (not timed), raw puts it back (timed).
type evolutionStep struct {
	name      string
	edit      func(src string) string
	undo, raw func(schemaName string) []string
	check     string // a query over every tenant's journal that must return n*journalRows afterwards
}

// evolution renames a column, runs a backfill step and checks the data of a SET NOT NULL at the
// fleet, each beside raw SQL, then times a no-op pass with journalSteps steps recorded per tenant.
func (b *bench) evolution(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n := len(b.slugs)
	if err := b.writeJournal(ctx, journalV1); err != nil {
		return nil, err
	}
	if err := b.fillJournal(ctx); err != nil {
		return nil, err
	}
	prof, err := profilerFromEnv()
	if err != nil {
		return nil, err
	}
	src := journalV1
	var out []result
	for _, s := range evolutionSteps() {
		src = s.edit(src)
		stop, err := prof.start(s.name)
		if err != nil {
			return out, err
		}
		cpu0 := processCPU()
		erp, err := b.timeJournal(ctx, src, s.name)
		cpu := processCPU() - cpu0
		if perr := stop(); err == nil {
			err = perr
		}
		if err != nil {
			return out, err
		}
		if err := b.journalCheck(ctx, s); err != nil {
			return out, err
		}
		raw, err := b.rawJournal(ctx, s)
		if err != nil {
			return out, err
		}
		b.logf("%s: erpctl %s, raw SQL %s for %d tenants; erpctl's own CPU %s", s.name, erp.Round(time.Millisecond), raw.Round(time.Millisecond), n, cpu.Round(time.Millisecond))
		r := result{Name: s.name + ", erpctl", Tenants: n}
		r.setTimes([]time.Duration{erp}, "s")
		r.P95 = nil
		r.setBaseline(raw.Seconds(), "the same SQL, "+rawFloorHow(n)+", nothing checked or recorded", false)
		r.setPass("≤ 1.5x raw SQL", erp.Seconds() <= 1.5*raw.Seconds())
		r.addNote("one ReconcileAll, 4 workers, %d rows a tenant; %.1fx raw SQL; erpctl's own CPU (user and system) %.0f µs a tenant",
			journalRows, erp.Seconds()/raw.Seconds(), float64(cpu.Microseconds())/float64(n))
		out = append(out, r)
	}
	noop, err := b.noopWithSteps(ctx, src)
	return append(out, noop...), err
}

func evolutionSteps() []evolutionStep {
	q := func(s, rest string) string { return "ALTER TABLE " + ident.Quote(s, "journal") + " " + rest }
	return []evolutionStep{
		{
			name: "evolution: rename column",
			edit: func(src string) string {
				return strings.Replace(src, `column "notes"`, `column "remarks"`, 1) +
					"rename \"column\" {\n  table = \"journal\"\n  from  = \"notes\"\n  to    = \"remarks\"\n}\n"
			},
			undo:  func(s string) []string { return []string{q(s, "RENAME COLUMN remarks TO notes")} },
			raw:   func(s string) []string { return []string{q(s, "RENAME COLUMN notes TO remarks")} },
			check: `SELECT count(*) FROM %s WHERE remarks LIKE 'note %%'`,
		},
		{
			name: "evolution: backfill step",
			edit: func(src string) string {
				return strings.Replace(src, `  column "remarks" {`, "  column \"summary\" {\n    type = text\n    null = true\n  }\n  column \"remarks\" {", 1) +
					"migration \"fill_summary\" {\n  run = \"after\"\n  sql = \"UPDATE journal SET summary = left(title, 8) || ': ' || remarks\"\n}\n"
			},
			undo: func(s string) []string { return []string{q(s, "DROP COLUMN summary")} },
			raw: func(s string) []string {
				return []string{q(s, "ADD COLUMN summary text NULL"),
					"UPDATE " + ident.Quote(s, "journal") + " SET summary = left(title, 8) || ': ' || remarks"}
			},
			check: `SELECT count(*) FROM %s WHERE summary IS NOT NULL`,
		},
		{
			name: "evolution: SET NOT NULL data check",
			edit: func(src string) string {
				return strings.Replace(src, "  column \"summary\" {\n    type = text\n    null = true", "  column \"summary\" {\n    type = text\n    null = false", 1)
			},
			undo: func(s string) []string { return []string{q(s, "ALTER COLUMN summary DROP NOT NULL")} },
			raw: func(s string) []string {
				return []string{"SELECT count(*) FROM " + ident.Quote(s, "journal") + " WHERE summary IS NULL", q(s, "ALTER COLUMN summary SET NOT NULL")}
			},
			check: `SELECT count(*) FROM %s WHERE summary IS NOT NULL`,
		},
	}
}

func (b *bench) writeJournal(ctx context.Context, src string) error {
	if err := os.WriteFile(filepath.Join(b.modulesDir, "journal.hcl"), []byte(src), 0o644); err != nil {
		return err
	}
	return publishModules(context.Background(), b.p)
}

// timeJournal writes a module version and times the one pass that rolls it out.
func (b *bench) timeJournal(ctx context.Context, src, name string) (time.Duration, error) {
	if err := b.settleChanges(ctx); err != nil {
		return 0, err
	}
	if err := b.writeJournal(ctx, src); err != nil {
		return 0, err
	}
	if err := b.settleServer(ctx); err != nil {
		return 0, err
	}
	pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Workers: 4})
	if err != nil {
		return 0, err
	}
	if a := pass.Counts[controlplane.ActionApplied]; a != len(b.slugs) {
		return 0, fmt.Errorf("%s: %d of %d tenants applied: %v", name, a, len(b.slugs), pass.Counts)
	}
	return pass.Duration, nil
}

// fillJournal rolls the journal table out and gives each tenant journalRows rows.
func (b *bench) fillJournal(ctx context.Context) error {
	pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Workers: 4})
	if err != nil {
		return err
	}
	if pass.Failed() {
		return fmt.Errorf("roll the journal table out: %v", pass.Counts)
	}
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, slug := range b.slugs {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (title, notes) SELECT 'entry ' || i, 'note ' || i FROM generate_series(1, %d) AS i`,
			ident.Quote(ident.SchemaName(slug), "journal"), journalRows)); err != nil {
			return fmt.Errorf("fill the journal of %s: %w", slug, err)
		}
	}
	return nil
}

// journalCheck checks that every tenant kept (or got) every row's value.
func (b *bench) journalCheck(ctx context.Context, s evolutionStep) error {
	var parts []string
	for _, slug := range b.slugs {
		parts = append(parts, fmt.Sprintf("("+s.check+")", ident.Quote(ident.SchemaName(slug), "journal")))
	}
	var got int
	for i := 0; i < len(parts); i += 200 {
		var n int
		if err := b.db.QueryRowContext(ctx, "SELECT "+strings.Join(parts[i:min(i+200, len(parts))], " + ")).Scan(&n); err != nil {
			return fmt.Errorf("%s: check rows: %w", s.name, err)
		}
		got += n
	}
	if want := len(b.slugs) * journalRows; got != want {
		return fmt.Errorf("%s: %d of %d rows as expected after erpctl's pass", s.name, got, want)
	}
	return nil
}

// rawJournal takes the change off every tenant (not timed), then times doing it by hand, each
// tenant's statements in one implicit transaction (see rawSQL).
func (b *bench) rawJournal(ctx context.Context, s evolutionStep) (time.Duration, error) {
	return b.rawSQL(ctx, s.name,
		func(schemaName string) string { return strings.Join(s.undo(schemaName), ";\n") },
		func(schemaName string) string { return strings.Join(s.raw(schemaName), ";\n") })
}

// noopWithSteps times no-op passes with one step recorded per tenant, adds steps until each
// tenant has journalSteps recorded, and times them again: a pass must not read them.
func (b *bench) noopWithSteps(ctx context.Context, src string) ([]result, error) {
	before, err := b.noopPasses(ctx)
	if err != nil {
		return nil, err
	}
	for i := 2; i <= journalSteps; i++ {
		src += fmt.Sprintf("migration \"noop_%02d\" {\n  run = \"after\"\n  sql = \"SELECT %d\"\n}\n", i, i)
	}
	if _, err := b.timeJournal(ctx, src, "record 50 steps"); err != nil {
		return nil, err
	}
	var recorded int
	if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM erpctl.migration_steps`).Scan(&recorded); err != nil {
		return nil, err
	}
	if want := journalSteps * len(b.slugs); recorded != want {
		return nil, fmt.Errorf("steps recorded: %d, want %d", recorded, want)
	}
	times, err := b.noopPasses(ctx)
	if err != nil {
		return nil, err
	}
	r := result{Name: "no-op ReconcileAll, 50 steps recorded", Tenants: len(b.slugs)}
	r.setTimes(times, "s")
	r.setBaseline(median(before).Seconds(), "the same no-op pass with 1 step recorded per tenant", false)
	limit := noopTarget(len(b.slugs))
	r.setPass(fmt.Sprintf("< %g s", limit), *r.Median < limit)
	r.addNote("median of %d passes; %d migration steps recorded in the catalog", len(times), recorded)
	b.logf("no-op with %d steps recorded: %.3f s (with 1 a tenant: %.3f s)", recorded, *r.Median, median(before).Seconds())
	return []result{r}, nil
}

// noopPasses times noopPasses passes that must find every tenant unchanged.
func (b *bench) noopPasses(ctx context.Context) ([]time.Duration, error) {
	var times []time.Duration
	for i := 1; i <= noopPasses; i++ {
		pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
		if err != nil {
			return nil, err
		}
		if u := pass.Counts[controlplane.ActionUnchanged]; u != len(b.slugs) {
			return nil, fmt.Errorf("no-op pass: %d of %d unchanged: %v", u, len(b.slugs), pass.Counts)
		}
		times = append(times, pass.Duration)
	}
	return times, nil
}
