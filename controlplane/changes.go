package controlplane

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// NotifySchemas is the NOTIFY channel of change tracking: its payload is the slug of a tenant
// whose schema DDL changed outside erpctl.
const NotifySchemas = "erpctl_schemas"

// markOwnDDL marks a transaction's DDL as erpctl's own, so that change tracking does not record
// it: the reconciler records the fingerprint it leaves, and a pass woken by its own change would
// find nothing to do (or, with two daemons, wake the other for nothing, and so on).
const markOwnDDL = `SET LOCAL erpctl.own_ddl = on`

// The event trigger function of change tracking. It runs inside the transaction of whoever ran
// the DDL, so it must never make that DDL fail: any error becomes a warning. SECURITY DEFINER
// lets a role without rights on the catalog (a migration script, a DBA) still record its change.
const changeTrackingFunction = `CREATE OR REPLACE FUNCTION erpctl.note_schema_change() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
	changed text[];
BEGIN
	IF current_setting('erpctl.own_ddl', true) = 'on' THEN
		RETURN;
	END IF;
	IF TG_EVENT = 'sql_drop' THEN
		SELECT array_agg(DISTINCT s) INTO changed FROM (
			SELECT CASE WHEN object_type = 'schema' THEN object_identity ELSE schema_name END AS s
			FROM pg_event_trigger_dropped_objects()) d
		WHERE starts_with(s, 'tenant_');
	ELSE
		SELECT array_agg(DISTINCT s) INTO changed FROM (
			SELECT CASE WHEN object_type = 'schema' THEN object_identity ELSE schema_name END AS s
			FROM pg_event_trigger_ddl_commands()) d
		WHERE starts_with(s, 'tenant_');
	END IF;
	IF changed IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO erpctl.changed_schemas (schema_name) SELECT unnest(changed)
		ON CONFLICT (schema_name) DO UPDATE SET changed_at = now();
	PERFORM pg_notify('` + NotifySchemas + `', replace(substr(s, 8), '_', '-')) FROM unnest(changed) s;
EXCEPTION WHEN OTHERS THEN
	RAISE WARNING 'erpctl change tracking could not record a schema change: %', SQLERRM;
END
$fn$`

// changeTriggers are the event triggers of change tracking, by event.
var changeTriggers = map[string]string{"erpctl_schema_changed": "ddl_command_end", "erpctl_schema_dropped": "sql_drop"}

// changeTriggerNames are the names of changeTriggers, as the argument of the queries below.
var changeTriggerNames = slices.Sorted(maps.Keys(changeTriggers))

// trackingOnSQL is true when every event trigger of change tracking (named by $1,
// changeTriggerNames) is installed and enabled.
const trackingOnSQL = `(SELECT count(*) FROM pg_catalog.pg_event_trigger WHERE evtname = ANY($1) AND evtenabled <> 'D') = cardinality($1::text[])`

// trackerRoleExpr names the role that owns the event trigger function, per database (roles are
// cluster-wide). The function runs as its owner on every DDL statement of every role, superusers
// included. Owned by a superuser, it would run as one whatever the control plane's role, which
// owns erpctl.changed_schemas, hangs on that table (a trigger); owned by the control plane's role,
// that role could rewrite it to run as whoever runs DDL next. Owned by a role that can do nothing
// but record a change, it gives no one more than they have.
const trackerRoleExpr = `'erpctl_track_' || substr(md5(current_database()), 1, 12)`

// EnableChangeTracking installs the event triggers that record, for each DDL statement run on a
// tenant schema by anyone but erpctl, the schema in erpctl.changed_schemas, and NOTIFY
// NotifySchemas. Creating an event trigger needs a superuser: the control plane's role when it is
// one, else Config.AdminURL at Open. Without either it installs nothing and reports false (true
// when a superuser installed them before), and the daemon's interval pass stays the only way
// drift made by hand is found.
func (p *Plane) EnableChangeTracking(ctx context.Context) (bool, error) {
	var super, on bool
	if err := p.pool.QueryRow(ctx, `SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), `+trackingOnSQL,
		changeTriggerNames).Scan(&super, &on); err != nil {
		return false, fmt.Errorf("check change tracking: %w", err)
	}
	if !super {
		return on, nil
	}
	err := p.inTx(ctx, func(tx *schema.Tx) error {
		if err := tx.ExecStatements(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, catalogLockKey)); err != nil {
			return err
		}
		return installTracking(ctx, tx)
	})
	if err != nil {
		return false, fmt.Errorf("install change tracking: %w", err)
	}
	return true, nil
}

// installTracking installs change tracking in tx, a superuser's, whose catalog lock it holds:
// the tracker role and what it may touch, the function, owned by it, and the event triggers.
func installTracking(ctx context.Context, tx *schema.Tx) error {
	var tracker string
	var have bool
	if err := tx.QueryRowContext(ctx, `SELECT r, EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) FROM (SELECT `+
		trackerRoleExpr+` AS r) t`).Scan(&tracker, &have); err != nil {
		return fmt.Errorf("read the change tracker's role: %w", err)
	}
	r := ident.Quote(tracker)
	var stmts []string
	if !have {
		stmts = append(stmts, "CREATE ROLE "+r+" NOLOGIN NOINHERIT")
	}
	stmts = append(stmts,
		"GRANT USAGE ON SCHEMA erpctl TO "+r,
		"GRANT SELECT, INSERT, UPDATE ON erpctl.changed_schemas TO "+r,
		changeTrackingFunction,
		"ALTER FUNCTION erpctl.note_schema_change() OWNER TO "+r)
	for name, event := range changeTriggers {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = $1)`, name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			stmts = append(stmts, fmt.Sprintf(`CREATE EVENT TRIGGER %s ON %s EXECUTE FUNCTION erpctl.note_schema_change()`,
				ident.Quote(name), event))
		}
	}
	return tx.ExecStatements(ctx, stmts...)
}

// ChangedTenants claims what an incremental pass must look at: the tenants whose schemas change
// tracking saw change since it was last asked (the rows are deleted: one daemon reconciles them,
// the others skip them, the tenant lock keeps them apart anyway), and the Failed tenants whose
// backoff has ended.
func (p *Plane) ChangedTenants(ctx context.Context) ([]ident.Slug, error) {
	rows, err := p.pool.Query(ctx, `WITH claimed AS (DELETE FROM erpctl.changed_schemas RETURNING schema_name)
		SELECT slug FROM erpctl.tenants WHERE schema_name IN (SELECT schema_name FROM claimed)
		UNION
		SELECT slug FROM erpctl.tenants WHERE status = 'Failed' AND next_attempt_at <= now()`)
	if err != nil {
		return nil, fmt.Errorf("read changed tenants: %w", err)
	}
	defer rows.Close()
	var out []ident.Slug
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("read changed tenants: %w", err)
		}
		slug, err := ident.ParseSlug(s)
		if err != nil {
			return nil, fmt.Errorf("read changed tenants: %w", err)
		}
		out = append(out, slug)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changed tenants: %w", err)
	}
	return out, nil
}

// causeFor is why a tenant is reconciled: the pass's Cause, or the tenant's in Causes.
func (o ReconcileOptions) causeFor(slug ident.Slug) string {
	if o.Cause != "" {
		return o.Cause
	}
	return o.Causes[slug]
}

// eventKind is the kind of the event an apply records: a repair when something asked for it.
func (o ReconcileOptions) eventKind() string {
	if o.Cause != "" {
		return "repair"
	}
	return "apply"
}

// eventOf is the kind and the cause of the event an apply to slug records: a repair when
// something asked for it.
func (o ReconcileOptions) eventOf(slug ident.Slug) (kind, why string) {
	if why = o.causeFor(slug); why != "" {
		return "repair", why
	}
	return "apply", ""
}

const tenantRefColumns = `SELECT slug, schema_name, follow_all, modules, status, status_reason, desired_hash, fingerprint, next_attempt_at, generation,
	labels FROM erpctl.tenants`

// queryTenantRefs reads the tenants a pass looks at: every tenant, or only those of an
// incremental pass, of those the ones sel selects.
func (p *Plane) queryTenantRefs(ctx context.Context, only []ident.Slug, sel labels.Selector) (*sql.Rows, error) {
	var args []any
	where := sel.SQL("labels", &args)
	if only != nil {
		slugs := make([]string, len(only))
		for i, s := range only {
			slugs[i] = s.String()
		}
		args = append(args, slugs)
		where += fmt.Sprintf(" AND slug = ANY($%d)", len(args))
	}
	return p.db.QueryContext(ctx, tenantRefColumns+` WHERE `+where+` ORDER BY slug`, args...)
}

// fingerprintFleet fingerprints every tenant schema in one query, on a connection of its own that
// is closed afterwards: a backend that read the fleet's catalog keeps what it read as long as it
// lives (3.9 GB at 100,000 tenants was seen); left in the pool, each of its connections would in
// time hold that much.
//
// One query, not parts by OID on several connections at once: a part's extra condition made
// PostgreSQL expect one schema, and it read pg_type once per schema for enum types (2 ms each),
// so two parts at 10,000 tenants took 10-16 s where the whole took 3 s. With a good plan, two
// parts took 1.97 s where the whole took 2.5 s on two cores (10,000 schemas): not worth a
// second backend that reads the whole catalog.
//
// With reuse, the fingerprints of the last read recorded in the catalog, by any process, stand
// while the catalog's write stamp is the one read before it (see fleetRead); reused says they
// did. refs are every tenant: a read is recorded, with record, as what it found of each against
// its row.
func (p *Plane) fingerprintFleet(ctx context.Context, refs []*tenantRef, reuse, record bool) (fps map[string]string, reused bool, err error) {
	// Read before the fingerprints, so that a write counted after it is one they may miss.
	stamp, err := schema.CatalogStamp(ctx, p.db)
	if err != nil {
		p.log.Warn("fingerprints read again: the catalog's write counts could not be read", "err", err)
		stamp = ""
	}
	if reuse {
		if fps, ok, err := p.recordedFleetRead(ctx, stamp, time.Now(), refs); err != nil || ok {
			return fps, ok, err
		}
	}
	conn, err := p.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("fingerprint schemas: %w", err)
	}
	defer conn.Close()
	at := time.Now()
	fps, err = schema.Fingerprints(ctx, conn, ident.SchemaPrefix)
	_ = conn.Raw(func(dc any) error {
		if c, ok := dc.(*stdlib.Conn); ok {
			_ = c.Conn().Close(context.WithoutCancel(ctx)) // the pool drops a closed connection
		}
		return driver.ErrBadConn // and database/sql does not reuse it
	})
	if err == nil && stamp != "" && record {
		p.recordFleetRead(ctx, fleetRead{Stamp: stamp, ReadAt: at}, refs, fps)
	}
	return fps, false, err
}

// fingerprintRefs fingerprints every tenant schema (all), or in an incremental pass only the
// schemas of refs.
func (p *Plane) fingerprintRefs(ctx context.Context, all, refs []*tenantRef, incremental, reuse, record bool) (map[string]string, bool, error) {
	if !incremental {
		return p.fingerprintFleet(ctx, all, reuse, record)
	}
	if len(refs) == 0 {
		return map[string]string{}, false, nil
	}
	names := make([]string, len(refs))
	for i, t := range refs {
		names[i] = t.schema
	}
	fps, err := schema.FingerprintsOf(ctx, p.db, names)
	return fps, false, err
}
