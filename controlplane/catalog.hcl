# The control catalog: erpctl's own state, applied by the same planner as tenant schemas.
schema "erpctl" {}

table "meta" {
  schema = schema.erpctl
  column "key" {
    type = text
  }
  column "value" {
    type = text
  }
  primary_key {
    columns = [column.key]
  }
}

table "tenants" {
  schema = schema.erpctl
  column "slug" {
    type = text
  }
  column "name" {
    type = text
  }
  column "schema_name" {
    type = text
  }
  # follow_all tenants get every module, including ones added later; the others get modules
  # and what those depend on.
  column "follow_all" {
    type    = boolean
    default = true
  }
  column "modules" {
    type    = sql("text[]")
    default = sql("'{}'::text[]")
  }
  column "status" {
    type    = text
    default = "Pending"
  }
  column "last_error" {
    type = text
    null = true
  }
  # The SQL a Blocked tenant would need (destructive).
  column "blocked_sql" {
    type = text
    null = true
  }
  # What was last applied: the desired-state hash, the schema fingerprint right after, and the
  # objects erpctl manages in the schema (managed_key, a row of erpctl.managed_sets).
  column "desired_hash" {
    type    = text
    default = ""
  }
  column "fingerprint" {
    type    = text
    default = ""
  }
  # The managed objects themselves, as erpctl up to 2026-12-05 kept them in every row: about a
  # kilobyte a tenant, which made a scan of 100,000 rows read 130 MB. Now '{}' wherever
  # managed_key is set. A row an earlier erpctl wrote, or restored from an archive, keeps its
  # own (managed_key NULL) until its next apply moves them to a set: rewriting every row at the
  # upgrade would hold the catalog for half a minute at 100,000 tenants.
  column "managed" {
    type    = jsonb
    default = sql("'{}'::jsonb")
  }
  column "managed_key" {
    type = text
    null = true
  }
  column "failures" {
    type    = integer
    default = 0
  }
  column "next_attempt_at" {
    type = timestamptz
    null = true
  }
  column "created_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "last_reconciled_at" {
    type = timestamptz
    null = true
  }
  column "last_applied_at" {
    type = timestamptz
    null = true
  }
  # Beside status, as in a Kubernetes condition: a reason code that programs decide on (never the
  # message), and when the status last changed.
  column "status_reason" {
    type    = text
    default = ""
  }
  column "status_changed_at" {
    type = timestamptz
    null = true
  }
  # On Citus, the node (host:port) `tenant move` put the tenant on, where the rebalancer leaves
  # it; "" when it is not pinned.
  column "pinned_node" {
    type    = text
    default = ""
  }
  # The module generation the schema was last brought to (erpctl.generations): what the data API
  # serves the tenant at. NULL for a tenant of an older erpctl that no reconcile has recorded since.
  column "generation" {
    type = bigint
    null = true
  }
  # Kubernetes-style labels ({"tier": "free"}), which selectors (-l) and deployment stages match.
  column "labels" {
    type    = jsonb
    default = sql("'{}'::jsonb")
  }
  primary_key {
    columns = [column.slug]
  }
  # Serves a selector's containment tests (labels @> '{"tier":"free"}') and key tests (labels ? 'k').
  index "tenants_labels_idx" {
    type    = GIN
    columns = [column.labels]
  }
  index "tenants_generation_idx" {
    columns = [column.generation]
  }
  index "tenants_schema_name_key" {
    unique  = true
    columns = [column.schema_name]
  }
  # The Failed tenants whose backoff ends first: an incremental pass looks them up without
  # reading every tenant.
  index "tenants_failed_next_attempt_idx" {
    columns = [column.next_attempt_at]
    where   = "status = 'Failed'"
  }
  # The console's tenants page pages by (sort column, slug) from an index, so that a page costs
  # the same at 100,000 tenants as at 100.
  index "tenants_name_slug_idx" {
    columns = [column.name, column.slug]
  }
  index "tenants_status_slug_idx" {
    columns = [column.status, column.slug]
  }
  index "tenants_generation_slug_idx" {
    on {
      expr = "coalesce(generation, 0)"
    }
    on {
      column = column.slug
    }
  }
  index "tenants_created_at_slug_idx" {
    columns = [column.created_at, column.slug]
  }
  # The tenants page's search: a prefix of the slug or (case-insensitive) of the name.
  index "tenants_slug_prefix_idx" {
    on {
      column = column.slug
      ops    = "text_pattern_ops"
    }
  }
  index "tenants_name_prefix_idx" {
    on {
      expr = "lower(name)"
      ops  = "text_pattern_ops"
    }
  }
}

table "events" {
  schema = schema.erpctl
  column "id" {
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "tenant" {
    type = text
  }
  column "at" {
    type    = timestamptz
    default = sql("now()")
  }
  # create, apply, repair, blocked, failed, delete, enable-module, disable-module, rollout (held by a halted rollout), move (Citus)
  column "kind" {
    type = text
  }
  # Why it happened, when something other than a pass asked for it: for a repair, the SQLSTATE
  # and the object the data API found missing or changed.
  column "reason" {
    type = text
    null = true
  }
  column "sql" {
    type = text
    null = true
  }
  column "duration_ms" {
    type    = double_precision
    default = 0
  }
  column "outcome" {
    type = text
  }
  column "error" {
    type = text
    null = true
  }
  # The module generation an apply, repair or create brought the tenant to, or a block or
  # failure aimed at.
  column "generation" {
    type = bigint
    null = true
  }
  primary_key {
    columns = [column.id]
  }
  index "events_tenant_id_idx" {
    columns = [column.tenant, column.id]
  }
  # The console's fleet page: failures and repairs of the last hour. The partial indexes hold
  # only those, so counting them does not read the hour's other events (a rollout to 100,000
  # tenants writes 100,000 of them).
  index "events_at_idx" {
    columns = [column.at]
  }
  index "events_failed_at_idx" {
    columns = [column.at]
    where   = "outcome IN ('failed', 'blocked')"
  }
  index "events_repaired_at_idx" {
    columns = [column.at]
    where   = "kind = 'repair' AND outcome = 'applied'"
  }
}

# Tenant schemas changed by DDL since a daemon last looked, written by the event triggers of
# change tracking (changes.go) and claimed by the daemon's incremental pass.
table "changed_schemas" {
  schema = schema.erpctl
  column "schema_name" {
    type = text
  }
  column "changed_at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.schema_name]
  }
}

table "tokens" {
  schema = schema.erpctl
  column "id" {
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "tenant" {
    type = text
  }
  column "name" {
    type = text
  }
  # sha256 of the token; the token itself is shown once and never stored.
  column "hash" {
    type = bytea
  }
  column "created_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "revoked_at" {
    type = timestamptz
    null = true
  }
  primary_key {
    columns = [column.id]
  }
  index "tokens_hash_key" {
    unique  = true
    columns = [column.hash]
  }
  index "tokens_tenant_idx" {
    columns = [column.tenant]
  }
  foreign_key "tokens_tenant_fkey" {
    columns     = [column.tenant]
    ref_columns = [table.tenants.column.slug]
    on_delete   = CASCADE
  }
}

# Staged rollouts of reconcile --all and the daemon: one row per change group (tenants going from
# the same state to the same desired state), rolled out to a canary, then in growing waves.
table "rollouts" {
  schema = schema.erpctl
  column "id" {
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  # desired-state hash | schema fingerprint | last applied hash, as the reconciler groups tenants
  column "group_key" {
    type = text
  }
  column "desired_hash" {
    type = text
  }
  # The module generation it rolls out; NULL for rollouts of an older erpctl.
  column "generation" {
    type = bigint
    null = true
  }
  # running, halted (failures reached the limit; the rest are held), done
  column "state" {
    type = text
  }
  column "tenants" {
    type    = integer
    default = 0
  }
  column "applied" {
    type    = integer
    default = 0
  }
  column "failed" {
    type    = integer
    default = 0
  }
  column "held" {
    type    = integer
    default = 0
  }
  column "waves" {
    type    = integer
    default = 0
  }
  column "canary" {
    type    = integer
    default = 0
  }
  column "max_failures" {
    type    = integer
    default = 0
  }
  column "message" {
    type    = text
    default = ""
  }
  # A generation's rollout (package controlplane/rollouts): its stages, each with its selector,
  # budget, gates and where it stands, as [{name, selector, state, ...}]. '[]' for the rollouts of
  # change groups an older erpctl recorded.
  column "stages" {
    type    = jsonb
    default = sql("'[]'::jsonb")
  }
  column "started_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "updated_at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.id]
  }
  index "rollouts_group_key_idx" {
    columns = [column.group_key, column.id]
  }
}

# The migration steps of module files each tenant has run ("ran") or did not need because it got
# the step's tables in their final form ("not_needed"), recorded in the tenant's reconcile
# transaction. A step is module/name. No foreign key to tenants: an archived tenant keeps what it
# ran, so that a restored tenant never runs a step twice; purge forgets them.
table "migration_steps" {
  schema = schema.erpctl
  column "tenant" {
    type = text
  }
  column "step" {
    type = text
  }
  column "outcome" {
    type = text
  }
  column "at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.tenant, column.step]
  }
}

# The sets of objects erpctl manages in tenant schemas, by the md5 of their JSON. Every tenant
# applied at one desired state manages the same set, so a fleet has a handful of them; each
# tenant row names its own by managed_key. Rows are never deleted: a set is a kilobyte and a
# new one comes only with a new desired state.
table "managed_sets" {
  schema = schema.erpctl
  column "key" {
    type = text
  }
  column "objects" {
    type = jsonb
  }
  primary_key {
    columns = [column.key]
  }
}

# Archived tenants: `tenant delete` renames the tenant's schema to schema_name and moves its
# catalog row and tokens here, so that `tenant restore` can put them back as they were. Only
# `tenant purge` drops the schema. One archive per slug: the slug stays reserved until purged.
table "archives" {
  schema = schema.erpctl
  column "id" {
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "slug" {
    type = text
  }
  column "schema_name" {
    type = text
  }
  # The tenant's erpctl.tenants row, as to_jsonb gave it with its managed objects in "managed",
  # and its erpctl.tokens rows.
  column "tenant" {
    type = jsonb
  }
  column "tokens" {
    type    = jsonb
    default = sql("'[]'::jsonb")
  }
  column "archived_at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.id]
  }
  index "archives_slug_key" {
    unique  = true
    columns = [column.slug]
  }
  index "archives_schema_name_key" {
    unique  = true
    columns = [column.schema_name]
  }
}

# Seed rows a tenant has had: each is inserted once, so that a seed row the tenant edits or
# deletes stays so. Kept while a tenant is archived (restore brings the tenant back as it was);
# purge forgets them.
table "seeds" {
  schema = schema.erpctl
  column "tenant" {
    type = text
  }
  column "key" {
    type = text
  }
  column "at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.tenant, column.key]
  }
}

# Limits of one tenant's data API requests, set by `erpctl tenant limits`; a NULL column is the
# daemon's default (its --tenant-rate and --tenant-concurrency). Kept while a tenant is archived;
# purge forgets them.
table "tenant_limits" {
  schema = schema.erpctl
  column "tenant" {
    type = text
  }
  # Django REST framework's notation ("100/minute"), or "none" for no limit.
  column "rate" {
    type = text
    null = true
  }
  # Requests in progress at once; 0 for no limit.
  column "concurrency" {
    type = integer
    null = true
  }
  column "updated_at" {
    type    = timestamptz
    default = sql("now()")
  }
  primary_key {
    columns = [column.tenant]
  }
}

# What each tenant's data API requests used, per minute, summed over every daemon: each adds its
# counts every few seconds, and removes the minutes older than an hour. `erpctl tenant top` reads it.
table "tenant_usage" {
  schema = schema.erpctl
  column "minute" {
    type = timestamptz
  }
  column "tenant" {
    type = text
  }
  column "requests" {
    type    = bigint
    default = 0
  }
  column "errors" {
    type    = bigint
    default = 0
  }
  column "throttled" {
    type    = bigint
    default = 0
  }
  # Time the tenant's requests held a database connection, in microseconds.
  column "db_us" {
    type    = bigint
    default = 0
  }
  column "rows" {
    type    = bigint
    default = 0
  }
  primary_key {
    columns = [column.minute, column.tenant]
  }
}

# The fleet's desired state: numbered, immutable module generations. The latest is what every
# tenant is reconciled to; module files are only where a new generation comes from (erpctl module
# publish). Sources hold every module file, built-ins included, as [{name, file, builtin, text}].
table "generations" {
  schema = schema.erpctl
  column "generation" {
    type = bigint
  }
  # modules.ContentHash of the sources: equal content, equal hash
  column "hash" {
    type = text
  }
  column "sources" {
    type = jsonb
  }
  column "published_at" {
    type    = timestamptz
    default = sql("now()")
  }
  # user@host of the CLI, or the daemon's name
  column "published_by" {
    type    = text
    default = ""
  }
  column "message" {
    type    = text
    default = ""
  }
  # The newest older generation with the same content, when publishing it again rolled back.
  column "rollback_of" {
    type = bigint
    null = true
  }
  primary_key {
    columns = [column.generation]
  }
  index "generations_hash_idx" {
    columns = [column.hash]
  }
}

# What was done to a rollout and by whom: a pass (started, a stage done, halted) or an operator
# (approve, pause, resume, abort, from any process).
table "rollout_events" {
  schema = schema.erpctl
  column "id" {
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "rollout" {
    type = bigint
  }
  column "at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "actor" {
    type    = text
    default = ""
  }
  column "action" {
    type = text
  }
  column "stage" {
    type    = text
    default = ""
  }
  column "message" {
    type    = text
    default = ""
  }
  primary_key {
    columns = [column.id]
  }
  index "rollout_events_rollout_id_idx" {
    columns = [column.rollout, column.id]
  }
}

# The write probe (writes.go): while the database refuses writes, the daemon empties this table
# and writes one row, which needs a new page on the disk; it holds that one row at most.
table "write_probe" {
  schema = schema.erpctl
  column "probed_at" {
    type = timestamptz
  }
}

# Console credentials (controlplane/operators): operator tokens, never a tenant's. Only the sha256
# of a token is kept; the token is shown once. login_hash is the sha256 of the one-time login
# link's code, cleared when the link is used or expires.
table "operator_tokens" {
  schema = schema.erpctl
  column "id" {
    type = bigint
    identity {
      generated = ALWAYS
    }
  }
  column "name" {
    type = text
  }
  column "hash" {
    type = bytea
  }
  column "login_hash" {
    type = bytea
    null = true
  }
  column "login_expires_at" {
    type = timestamptz
    null = true
  }
  column "created_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "revoked_at" {
    type = timestamptz
    null = true
  }
  primary_key {
    columns = [column.id]
  }
  index "operator_tokens_hash_key" {
    unique  = true
    columns = [column.hash]
  }
  index "operator_tokens_login_hash_key" {
    unique  = true
    columns = [column.login_hash]
  }
}

# Browser sessions of the console: the sha256 of the cookie's secret, the operator token it was
# opened with (revoking the token ends them) and when it ends.
table "operator_sessions" {
  schema = schema.erpctl
  column "hash" {
    type = bytea
  }
  column "token_id" {
    type = bigint
  }
  column "created_at" {
    type    = timestamptz
    default = sql("now()")
  }
  column "expires_at" {
    type = timestamptz
  }
  primary_key {
    columns = [column.hash]
  }
  index "operator_sessions_token_id_idx" {
    columns = [column.token_id]
  }
  foreign_key "operator_sessions_token_id_fkey" {
    columns     = [column.token_id]
    ref_columns = [table.operator_tokens.column.id]
    on_delete   = CASCADE
  }
}
