package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// archivePrefix starts the name of every archived tenant schema. It is outside the "tenant_"
// namespace, so the fingerprint query, the reconciler and the data API never see an archive.
const archivePrefix = "erpctl_arch_"

// Archive is an archived tenant: its schema renamed, its catalog row and tokens kept aside.
type Archive struct {
	ID         int64     `json:"id"`
	Slug       string    `json:"slug"`
	Name       string    `json:"name"`
	Schema     string    `json:"archive_schema"` // where its rows are now
	Modules    []string  `json:"modules"`        // what it had chosen; empty: every module
	Tokens     int       `json:"tokens"`         // tokens that come back on restore
	ArchivedAt time.Time `json:"archived_at"`
}

// archiveSchemaName is the schema an archive's rows live in: the archive id makes it unique, the
// tenant's schema name (cut to PostgreSQL's 63 bytes) tells people whose it is.
func archiveSchemaName(id int64, tenantSchema string) string {
	s := fmt.Sprintf("%s%d_%s", archivePrefix, id, strings.TrimPrefix(tenantSchema, "tenant_"))
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// ArchiveTenant takes a tenant out of service without losing a row: its schema is renamed out of
// the tenant namespace and its catalog row and tokens move to erpctl.archives, in one
// transaction. The data API answers 404 for it and 401 for its tokens from the commit on; the
// reconciler no longer sees it; RestoreTenant brings it back as it was.
func (p *Plane) ArchiveTenant(ctx context.Context, slug ident.Slug) (*Archive, error) {
	start := time.Now()
	var a *Archive
	err := p.inTx(ctx, func(tx *schema.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, tenantLockKey(slug)); err != nil {
			return err
		}
		var schemaName string
		var row, tokens []byte
		err := tx.QueryRowContext(ctx, `SELECT t.schema_name, to_jsonb(t) - 'managed_key' || jsonb_build_object('managed', `+managedSQL+`),
			(SELECT coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.id), '[]') FROM erpctl.tokens k WHERE k.tenant = t.slug)
			FROM erpctl.tenants t WHERE t.slug = $1 FOR UPDATE`, slug.String()).Scan(&schemaName, &row, &tokens)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("tenant %w", ErrNotFound)
		}
		if err != nil {
			return err
		}
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT nextval(pg_get_serial_sequence('erpctl.archives', 'id'))`).Scan(&id); err != nil {
			return err
		}
		arch := archiveSchemaName(id, schemaName)
		if _, err := tx.ExecContext(ctx, `INSERT INTO erpctl.archives (id, slug, schema_name, tenant, tokens)
			OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5)`, id, slug.String(), arch, row, tokens); err != nil {
			return err
		}
		// The tokens go with the row (ON DELETE CASCADE); their copy is in the archive.
		if _, err := tx.ExecContext(ctx, `DELETE FROM erpctl.tenants WHERE slug = $1`, slug.String()); err != nil {
			return err
		}
		stmt := "ALTER SCHEMA " + ident.Quote(schemaName) + " RENAME TO " + ident.Quote(arch)
		if err := tx.ExecStatements(ctx, markOwnDDL, stmt); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, slug, "delete", stmt, time.Since(start), "archived", nil); err != nil {
			return err
		}
		if err := notifyLifecycle(ctx, tx, slug); err != nil {
			return err
		}
		a, err = readArchive(ctx, tx, slug)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("archive tenant %q: %w", slug, err)
	}
	return a, nil
}

// notifyLifecycle tells daemons that a tenant came or went, and that tokens changed with it, so
// that the data API forgets what it cached of both at once.
func notifyLifecycle(ctx context.Context, tx schema.Querier, slug ident.Slug) error {
	if err := notifyTenant(ctx, tx, slug); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, NotifyTokens, "tenant:"+slug.String())
	return err
}

const archiveColumns = `id, slug, tenant->>'name', schema_name,
	ARRAY(SELECT jsonb_array_elements_text(CASE WHEN (tenant->>'follow_all')::boolean THEN '[]' ELSE tenant->'modules' END)),
	jsonb_array_length(tokens), archived_at`

func scanArchive(row interface{ Scan(...any) error }) (*Archive, error) {
	var a Archive
	var mods []string
	if err := row.Scan(&a.ID, &a.Slug, &a.Name, &a.Schema, &stringArray{&mods}, &a.Tokens, &a.ArchivedAt); err != nil {
		return nil, err
	}
	a.Modules = mods
	if a.Modules == nil {
		a.Modules = []string{}
	}
	return &a, nil
}

func readArchive(ctx context.Context, q *schema.Tx, slug ident.Slug) (*Archive, error) {
	a, err := scanArchive(q.QueryRowContext(ctx, `SELECT `+archiveColumns+` FROM erpctl.archives WHERE slug = $1`, slug.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no archive of tenant %q: %w", slug, ErrNotFound)
	}
	return a, err
}

// ListArchives returns every archived tenant, oldest archive first.
func (p *Plane) ListArchives(ctx context.Context) ([]Archive, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT `+archiveColumns+` FROM erpctl.archives ORDER BY archived_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list archived tenants: %w", err)
	}
	defer rows.Close()
	out := []Archive{}
	for rows.Next() {
		a, err := scanArchive(rows)
		if err != nil {
			return nil, fmt.Errorf("list archived tenants: %w", err)
		}
		out = append(out, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list archived tenants: %w", err)
	}
	return out, nil
}

// RestoreTenant puts an archived tenant back as it was when archived: the same schema name,
// rows, status, modules and tokens (revoked ones still revoked).
func (p *Plane) RestoreTenant(ctx context.Context, slug ident.Slug) (*Tenant, error) {
	start := time.Now()
	err := p.inTx(ctx, func(tx *schema.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, tenantLockKey(slug)); err != nil {
			return err
		}
		var arch string
		var row, tokens []byte
		err := tx.QueryRowContext(ctx, `DELETE FROM erpctl.archives WHERE slug = $1 RETURNING schema_name, tenant, tokens`,
			slug.String()).Scan(&arch, &row, &tokens)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no archive of it (erpctl tenant list --archived shows what can be restored)", ErrNotFound)
		}
		if err != nil {
			return err
		}
		var t struct {
			Schema string `json:"schema_name"`
		}
		if err := json.Unmarshal(row, &t); err != nil || t.Schema == "" {
			return fmt.Errorf("read the archived tenant row: %v", err)
		}
		if err := insertJSONRows(ctx, tx, "tenants", "["+string(row)+"]"); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("tenant %w (made before this archive)", ErrExists)
			}
			return err
		}
		if err := insertJSONRows(ctx, tx, "tokens", string(tokens)); err != nil {
			return err
		}
		stmt := "ALTER SCHEMA " + ident.Quote(arch) + " RENAME TO " + ident.Quote(t.Schema)
		if err := tx.ExecStatements(ctx, markOwnDDL, stmt); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, slug, "restore", stmt, time.Since(start), "applied", nil); err != nil {
			return err
		}
		return notifyLifecycle(ctx, tx, slug)
	})
	if err != nil {
		return nil, fmt.Errorf("restore tenant %q: %w", slug, err)
	}
	return p.GetTenant(ctx, slug)
}

// insertJSONRows inserts rows, a JSON array of objects as to_jsonb gave them, into catalog table
// table. Only the keys the table has are written, and a column the archive lacks (the catalog
// gained it since) takes its default: an archive outlives catalog upgrades.
func insertJSONRows(ctx context.Context, tx *schema.Tx, table, rows string) error {
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(rows), &objs); err != nil {
		return fmt.Errorf("read archived %s: %w", table, err)
	}
	if len(objs) == 0 {
		return nil
	}
	var have []string
	r, err := tx.QueryContext(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass
		AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, catalogSchema+"."+table)
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		var c string
		if err := r.Scan(&c); err != nil {
			return err
		}
		if _, ok := objs[0][c]; ok {
			have = append(have, ident.Quote(c))
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	cols := strings.Join(have, ", ")
	q := fmt.Sprintf(`INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM jsonb_populate_recordset(NULL::%s, $1)`,
		ident.Quote(catalogSchema, table), cols, cols, ident.Quote(catalogSchema, table))
	if _, err := tx.ExecContext(ctx, q, rows); err != nil {
		return fmt.Errorf("put back %s: %w", table, err)
	}
	return nil
}

// PurgeTenant drops an archived tenant's schema and every row in it, and forgets the archive:
// the slug is free again. It is the only way erpctl destroys a tenant's rows.
func (p *Plane) PurgeTenant(ctx context.Context, slug ident.Slug) (*Archive, error) {
	start := time.Now()
	var a *Archive
	err := p.inTx(ctx, func(tx *schema.Tx) error {
		var err error
		if a, err = readArchive(ctx, tx, slug); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM erpctl.archives WHERE id = $1`, a.ID); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM erpctl.seeds WHERE tenant = $1`, `DELETE FROM erpctl.migration_steps WHERE tenant = $1`,
			`DELETE FROM erpctl.tenant_limits WHERE tenant = $1`} {
			if _, err := tx.ExecContext(ctx, q, slug.String()); err != nil {
				return err
			}
		}
		stmt := "DROP SCHEMA IF EXISTS " + ident.Quote(a.Schema) + " CASCADE"
		if err := tx.ExecStatements(ctx, markOwnDDL, stmt); err != nil {
			return err
		}
		return insertEvent(ctx, tx, slug, "purge", stmt, time.Since(start), "applied", nil)
	})
	if err != nil {
		return nil, fmt.Errorf("purge tenant %q: %w", slug, err)
	}
	return a, nil
}

// PurgeArchivedBefore purges every tenant archived before cutoff, each in its own transaction,
// and returns those purged; it stops at the first failure.
func (p *Plane) PurgeArchivedBefore(ctx context.Context, cutoff time.Time) ([]Archive, error) {
	all, err := p.ListArchives(ctx)
	if err != nil {
		return nil, err
	}
	out := []Archive{}
	for _, a := range all {
		if !a.ArchivedAt.Before(cutoff) {
			continue
		}
		slug, err := ident.ParseSlug(a.Slug)
		if err != nil {
			return out, fmt.Errorf("purge archive %d: %w", a.ID, err)
		}
		if _, err := p.PurgeTenant(ctx, slug); err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// checkNotArchived refuses a new tenant whose slug an archive holds. It runs after the tenant's
// row is inserted, so that a concurrent archive of the slug has committed (the insert waited on
// its row) and is seen.
func checkNotArchived(ctx context.Context, tx *schema.Tx, slug ident.Slug) error {
	var archived bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM erpctl.archives WHERE slug = $1)`, slug.String()).Scan(&archived); err != nil {
		return err
	}
	if archived {
		return fmt.Errorf("tenant %w as an archive: restore it with erpctl tenant restore %s, or free the slug with erpctl tenant purge %s --yes",
			ErrExists, slug, slug)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
