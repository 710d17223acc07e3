package main

import (
	"context"
	"fmt"
	"time"

	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

const naiveCreates = 20

// create times CreateTenant one tenant at a time in-process, beside plain Atlas creating the same
// schema, and `erpctl tenant create` end to end.
func (b *bench) create(ctx context.Context) ([]result, error) {
	k := b.inProcessCreates()
	var times []time.Duration
	for i := 1; i <= k; i++ {
		start := time.Now()
		if _, err := b.p.CreateTenant(ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(fmt.Sprintf("bench-create-%03d", i))}); err != nil {
			return nil, err
		}
		times = append(times, time.Since(start))
	}
	in := result{Name: "tenant create, in-process", Tenants: b.n}
	in.setTimes(times, "ms")
	in.setPass("median < 20 ms", *in.Median < 20)
	in.addNote("CreateTenant one at a time, %d tenants, on top of a fleet of %d", k, b.n-k-b.cliCreates())

	naive, err := b.naiveCreate(ctx)
	if err != nil {
		return nil, err
	}
	in.setBaseline(inUnit(median(naive), "ms"), fmt.Sprintf(
		"median of plain Atlas creating the same schema (inspect, RealmDiff, ApplyChanges in one transaction), %d schemas", len(naive)), false)
	b.logf("create in-process: median %.1f ms, plain Atlas %.1f ms", *in.Median, *in.Baseline)

	floor := result{Name: "tenant create, raw SQL floor", Tenants: b.n}
	raw, err := b.rawCreate(ctx)
	if err != nil {
		return nil, err
	}
	floor.setTimes(raw, "ms")
	floor.addNote("the DDL CreateTenant applied (CREATE SCHEMA and the tables), one transaction a schema, one session, %d schemas, nothing recorded; CreateTenant is %.1fx this", len(raw), *in.Median / *floor.Median)
	b.logf("create by raw SQL: median %.1f ms", *floor.Median)

	cli := result{Name: "tenant create, erpctl CLI end to end", Tenants: b.n}
	if b.erpctl == "" {
		cli.Skipped = fmt.Sprintf("cmd/erpctl does not build yet: %v", b.erpctlErr)
		return []result{in, floor, cli}, nil
	}
	times = nil
	for i := 1; i <= b.cliCreates(); i++ {
		start := time.Now()
		if _, err := b.runErpctl(ctx, "tenant", "create", fmt.Sprintf("bench-cli-%d", i)); err != nil {
			cli.Error = err.Error()
			return []result{in, floor, cli}, nil
		}
		times = append(times, time.Since(start))
	}
	cli.setTimes(times, "ms")
	cli.setPass("median < 150 ms", *cli.Median < 150)
	cli.addNote("`erpctl --database-url URL tenant create bench-cli-N`, %d runs, process start to exit", len(times))
	b.logf("create by CLI: median %.1f ms", *cli.Median)
	return []result{in, floor, cli}, nil
}

// naiveCreate creates naiveCreates schemas as a user of the Atlas library would, one at a time,
// then drops them; it returns the time of each.
func (b *bench) naiveCreate(ctx context.Context) ([]time.Duration, error) {
	reg := b.p.LocalModules()
	var times []time.Duration
	var made []string
	defer func() { b.dropSchemas(ctx, made) }()
	for i := 1; i <= naiveCreates; i++ {
		name := fmt.Sprintf("naive_create_%03d", i)
		desired, err := reg.Desired(reg.Names(), name)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		err = func() error {
			tx, err := b.db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			drv, err := postgres.Open(tx)
			if err != nil {
				return err
			}
			if _, err := drv.InspectSchema(ctx, name, nil); !schema.IsNotExistError(err) {
				return fmt.Errorf("schema %s: want none, got %v", name, err)
			}
			changes, err := drv.RealmDiff(schema.NewRealm(), schema.NewRealm(desired))
			if err != nil {
				return err
			}
			if err := drv.ApplyChanges(ctx, changes); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			return nil, fmt.Errorf("plain Atlas create of %s: %w", name, err)
		}
		made = append(made, name)
		times = append(times, time.Since(start))
	}
	return times, nil
}

// rawCreate runs the SQL of the last tenant CreateTenant made, in new schemas, one transaction
// each in one session, then drops them: the floor PostgreSQL itself sets.
func (b *bench) rawCreate(ctx context.Context) ([]time.Duration, error) {
	var plan string
	if err := b.db.QueryRowContext(ctx, `SELECT sql FROM erpctl.events WHERE kind = 'create' ORDER BY id DESC LIMIT 1`).Scan(&plan); err != nil {
		return nil, fmt.Errorf("read a create plan: %w", err)
	}
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var times []time.Duration
	var made []string
	defer func() { b.dropSchemas(ctx, made) }()
	for i := 1; i <= naiveCreates; i++ {
		name := fmt.Sprintf("raw_create_%03d", i)
		q := "BEGIN; CREATE SCHEMA " + ident.Quote(name) + "; SET LOCAL search_path TO " + ident.Quote(name) + ";\n" + plan + ";\nCOMMIT"
		start := time.Now()
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("raw create of %s: %w", name, err)
		}
		times = append(times, time.Since(start))
		made = append(made, name)
	}
	return times, nil
}

// dropSchemas drops schemas a scenario made for itself, even when ctx has ended.
func (b *bench) dropSchemas(ctx context.Context, names []string) {
	for _, s := range names {
		if _, err := b.db.ExecContext(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+ident.Quote(s)+" CASCADE"); err != nil {
			b.logf("drop %s: %v", s, err)
		}
	}
}
