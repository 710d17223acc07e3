package controlplane

import (
	"context"
	"fmt"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// On Citus (the citus extension installed in the database, erpctl pointed at its coordinator),
// every tenant schema is a distributed schema: its tables are single-shard tables placed
// together on one worker, and the schema moves whole. erpctl distributes each tenant schema
// itself once its tables exist, and keeps every other schema it makes local: the catalog, and
// the scratch schemas that comparisons create and roll back. Whatever the database's
// citus.enable_schema_based_sharding says, erpctl turns it off in its own transactions, so
// that a schema becomes distributed only when erpctl asks for it. On plain PostgreSQL none of
// this runs.

// citusLocal keeps the schemas a transaction creates from here on local on Citus.
const citusLocal = `SET LOCAL citus.enable_schema_based_sharding = off`

// detectCitus reports whether the database has the citus extension.
func (p *Plane) detectCitus(ctx context.Context) error {
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')`).Scan(&p.citus); err != nil {
		return fmt.Errorf("look for the citus extension: %w", err)
	}
	return nil
}

// Citus reports whether the database is a Citus coordinator's (the citus extension is there).
func (p *Plane) Citus() bool { return p.citus }

// keepLocal makes the schemas tx creates from now on local on Citus.
func (p *Plane) keepLocal(ctx context.Context, tx *schema.Tx) error {
	if !p.citus {
		return nil
	}
	return tx.ExecStatements(ctx, citusLocal)
}

// distribute makes a tenant schema a distributed schema on Citus, in tx, after its tables:
// Citus turns each table into a single-shard table of the schema's own colocation group and
// places the group on a worker. A schema that is distributed already is left as it is.
func (p *Plane) distribute(ctx context.Context, tx *schema.Tx, schemaName string) error {
	if !p.citus {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.citus_schema_distribute(n.oid) FROM pg_catalog.pg_namespace n
		WHERE n.nspname = $1 AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_schema d WHERE d.schemaid = n.oid)`, schemaName); err != nil {
		return fmt.Errorf("distribute schema %s on Citus: %w", schemaName, err)
	}
	return nil
}

// citusLogin lets the data API's role log in on Citus. A coordinator runs a statement on a
// worker over a connection it opens as the current role, SET ROLE included, so a NOLOGIN role
// cannot read a single row there. The role has no password: it logs in only where the
// cluster's own node-to-node authentication (trust, certificates, pg_dist_authinfo) lets it.
func (p *Plane) citusLogin(ctx context.Context, role string) error {
	if !p.citus {
		return nil
	}
	var can bool
	if err := p.pool.QueryRow(ctx, `SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1`, role).Scan(&can); err != nil {
		return fmt.Errorf("read the data API's role %s: %w", role, err)
	}
	if can {
		return nil
	}
	// Citus propagates ALTER ROLE to the workers.
	if _, err := p.pool.Exec(ctx, `ALTER ROLE `+ident.Quote(role)+` LOGIN`); err != nil {
		return fmt.Errorf("let the data API's role %s log in to Citus workers: %w", role, err)
	}
	return nil
}
