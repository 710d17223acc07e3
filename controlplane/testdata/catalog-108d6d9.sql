-- A database made by erpctl at commit 108d6d9 (the main of 2026-12-05, before module generations):
-- tenants acme (all modules) and initech (all), globex (product only), hooli archived, rows in
-- each, a token for acme and a revoked one for globex, a done rollout of module sales (an enum and
-- a seed row: testdata/catalog-108d6d9-sales.hcl), their events; from pg_dump --inserts.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: erpctl; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA erpctl;


--
-- Name: erpctl_arch_1_hooli; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA erpctl_arch_1_hooli;


--
-- Name: tenant_acme; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA tenant_acme;


--
-- Name: tenant_globex; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA tenant_globex;


--
-- Name: tenant_initech; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA tenant_initech;


--
-- Name: order_status; Type: TYPE; Schema: tenant_acme; Owner: -
--

CREATE TYPE tenant_acme.order_status AS ENUM (
    'draft',
    'done'
);


--
-- Name: order_status; Type: TYPE; Schema: tenant_initech; Owner: -
--

CREATE TYPE tenant_initech.order_status AS ENUM (
    'draft',
    'done'
);


--
-- Name: note_schema_change(); Type: FUNCTION; Schema: erpctl; Owner: -
--

CREATE FUNCTION erpctl.note_schema_change() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog'
    AS $$
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
	PERFORM pg_notify('erpctl_schemas', replace(substr(s, 8), '_', '-')) FROM unnest(changed) s;
EXCEPTION WHEN OTHERS THEN
	RAISE WARNING 'erpctl change tracking could not record a schema change: %', SQLERRM;
END
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: archives; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.archives (
    id bigint NOT NULL,
    slug text NOT NULL,
    schema_name text NOT NULL,
    tenant jsonb NOT NULL,
    tokens jsonb DEFAULT '[]'::jsonb NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: archives_id_seq; Type: SEQUENCE; Schema: erpctl; Owner: -
--

ALTER TABLE erpctl.archives ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME erpctl.archives_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: changed_schemas; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.changed_schemas (
    schema_name text NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: events; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.events (
    id bigint NOT NULL,
    tenant text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    kind text NOT NULL,
    reason text,
    sql text,
    duration_ms double precision DEFAULT 0 NOT NULL,
    outcome text NOT NULL,
    error text
);


--
-- Name: events_id_seq; Type: SEQUENCE; Schema: erpctl; Owner: -
--

ALTER TABLE erpctl.events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME erpctl.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: meta; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.meta (
    key text NOT NULL,
    value text NOT NULL
);


--
-- Name: migration_steps; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.migration_steps (
    tenant text NOT NULL,
    step text NOT NULL,
    outcome text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: rollouts; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.rollouts (
    id bigint NOT NULL,
    group_key text NOT NULL,
    desired_hash text NOT NULL,
    state text NOT NULL,
    tenants integer DEFAULT 0 NOT NULL,
    applied integer DEFAULT 0 NOT NULL,
    failed integer DEFAULT 0 NOT NULL,
    held integer DEFAULT 0 NOT NULL,
    waves integer DEFAULT 0 NOT NULL,
    canary integer DEFAULT 0 NOT NULL,
    max_failures integer DEFAULT 0 NOT NULL,
    message text DEFAULT ''::text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: rollouts_id_seq; Type: SEQUENCE; Schema: erpctl; Owner: -
--

ALTER TABLE erpctl.rollouts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME erpctl.rollouts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: seeds; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.seeds (
    tenant text NOT NULL,
    key text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: tenants; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.tenants (
    slug text NOT NULL,
    name text NOT NULL,
    schema_name text NOT NULL,
    follow_all boolean DEFAULT true NOT NULL,
    modules text[] DEFAULT '{}'::text[] NOT NULL,
    status text DEFAULT 'Pending'::text NOT NULL,
    last_error text,
    blocked_sql text,
    desired_hash text DEFAULT ''::text NOT NULL,
    fingerprint text DEFAULT ''::text NOT NULL,
    managed jsonb DEFAULT '{}'::jsonb NOT NULL,
    failures integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    last_reconciled_at timestamp with time zone,
    last_applied_at timestamp with time zone,
    status_reason text DEFAULT ''::text NOT NULL,
    status_changed_at timestamp with time zone,
    pinned_node text DEFAULT ''::text NOT NULL
);


--
-- Name: tokens; Type: TABLE; Schema: erpctl; Owner: -
--

CREATE TABLE erpctl.tokens (
    id bigint NOT NULL,
    tenant text NOT NULL,
    name text NOT NULL,
    hash bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone
);


--
-- Name: tokens_id_seq; Type: SEQUENCE; Schema: erpctl; Owner: -
--

ALTER TABLE erpctl.tokens ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME erpctl.tokens_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: categories; Type: TABLE; Schema: erpctl_arch_1_hooli; Owner: -
--

CREATE TABLE erpctl_arch_1_hooli.categories (
    id bigint NOT NULL,
    name text NOT NULL,
    description text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: categories_id_seq; Type: SEQUENCE; Schema: erpctl_arch_1_hooli; Owner: -
--

ALTER TABLE erpctl_arch_1_hooli.categories ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME erpctl_arch_1_hooli.categories_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: products; Type: TABLE; Schema: erpctl_arch_1_hooli; Owner: -
--

CREATE TABLE erpctl_arch_1_hooli.products (
    id bigint NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    description text,
    price numeric(12,2) DEFAULT 0 NOT NULL,
    category_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: products_id_seq; Type: SEQUENCE; Schema: erpctl_arch_1_hooli; Owner: -
--

ALTER TABLE erpctl_arch_1_hooli.products ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME erpctl_arch_1_hooli.products_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: categories; Type: TABLE; Schema: tenant_acme; Owner: -
--

CREATE TABLE tenant_acme.categories (
    id bigint NOT NULL,
    name text NOT NULL,
    description text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: categories_id_seq; Type: SEQUENCE; Schema: tenant_acme; Owner: -
--

ALTER TABLE tenant_acme.categories ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_acme.categories_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: orders; Type: TABLE; Schema: tenant_acme; Owner: -
--

CREATE TABLE tenant_acme.orders (
    id bigint NOT NULL,
    status tenant_acme.order_status NOT NULL,
    note text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: orders_id_seq; Type: SEQUENCE; Schema: tenant_acme; Owner: -
--

ALTER TABLE tenant_acme.orders ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_acme.orders_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: products; Type: TABLE; Schema: tenant_acme; Owner: -
--

CREATE TABLE tenant_acme.products (
    id bigint NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    description text,
    price numeric(12,2) DEFAULT 0 NOT NULL,
    category_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: products_id_seq; Type: SEQUENCE; Schema: tenant_acme; Owner: -
--

ALTER TABLE tenant_acme.products ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_acme.products_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: stock_items; Type: TABLE; Schema: tenant_acme; Owner: -
--

CREATE TABLE tenant_acme.stock_items (
    id bigint NOT NULL,
    product_id bigint NOT NULL,
    warehouse_id bigint NOT NULL,
    quantity integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text,
    CONSTRAINT stock_items_quantity_check CHECK ((quantity >= 0))
);


--
-- Name: stock_items_id_seq; Type: SEQUENCE; Schema: tenant_acme; Owner: -
--

ALTER TABLE tenant_acme.stock_items ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_acme.stock_items_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: warehouses; Type: TABLE; Schema: tenant_acme; Owner: -
--

CREATE TABLE tenant_acme.warehouses (
    id bigint NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: warehouses_id_seq; Type: SEQUENCE; Schema: tenant_acme; Owner: -
--

ALTER TABLE tenant_acme.warehouses ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_acme.warehouses_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: categories; Type: TABLE; Schema: tenant_globex; Owner: -
--

CREATE TABLE tenant_globex.categories (
    id bigint NOT NULL,
    name text NOT NULL,
    description text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: categories_id_seq; Type: SEQUENCE; Schema: tenant_globex; Owner: -
--

ALTER TABLE tenant_globex.categories ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_globex.categories_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: products; Type: TABLE; Schema: tenant_globex; Owner: -
--

CREATE TABLE tenant_globex.products (
    id bigint NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    description text,
    price numeric(12,2) DEFAULT 0 NOT NULL,
    category_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: products_id_seq; Type: SEQUENCE; Schema: tenant_globex; Owner: -
--

ALTER TABLE tenant_globex.products ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_globex.products_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: categories; Type: TABLE; Schema: tenant_initech; Owner: -
--

CREATE TABLE tenant_initech.categories (
    id bigint NOT NULL,
    name text NOT NULL,
    description text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: categories_id_seq; Type: SEQUENCE; Schema: tenant_initech; Owner: -
--

ALTER TABLE tenant_initech.categories ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_initech.categories_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: orders; Type: TABLE; Schema: tenant_initech; Owner: -
--

CREATE TABLE tenant_initech.orders (
    id bigint NOT NULL,
    status tenant_initech.order_status NOT NULL,
    note text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: orders_id_seq; Type: SEQUENCE; Schema: tenant_initech; Owner: -
--

ALTER TABLE tenant_initech.orders ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_initech.orders_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: products; Type: TABLE; Schema: tenant_initech; Owner: -
--

CREATE TABLE tenant_initech.products (
    id bigint NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    description text,
    price numeric(12,2) DEFAULT 0 NOT NULL,
    category_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: products_id_seq; Type: SEQUENCE; Schema: tenant_initech; Owner: -
--

ALTER TABLE tenant_initech.products ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_initech.products_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: stock_items; Type: TABLE; Schema: tenant_initech; Owner: -
--

CREATE TABLE tenant_initech.stock_items (
    id bigint NOT NULL,
    product_id bigint NOT NULL,
    warehouse_id bigint NOT NULL,
    quantity integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text,
    CONSTRAINT stock_items_quantity_check CHECK ((quantity >= 0))
);


--
-- Name: stock_items_id_seq; Type: SEQUENCE; Schema: tenant_initech; Owner: -
--

ALTER TABLE tenant_initech.stock_items ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_initech.stock_items_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: warehouses; Type: TABLE; Schema: tenant_initech; Owner: -
--

CREATE TABLE tenant_initech.warehouses (
    id bigint NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    created_by text,
    updated_by text
);


--
-- Name: warehouses_id_seq; Type: SEQUENCE; Schema: tenant_initech; Owner: -
--

ALTER TABLE tenant_initech.warehouses ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME tenant_initech.warehouses_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Data for Name: archives; Type: TABLE DATA; Schema: erpctl; Owner: -
--

INSERT INTO erpctl.archives OVERRIDING SYSTEM VALUE VALUES (1, 'hooli', 'erpctl_arch_1_hooli', '{"name": "hooli", "slug": "hooli", "status": "Ready", "managed": {"products": ["column:category_id", "column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:price", "column:sku", "column:updated_at", "column:updated_by", "constraint:products_category_id_fkey", "index:products_name_idx", "index:products_sku_key"], "categories": ["column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:updated_at", "column:updated_by", "index:categories_name_key"]}, "modules": ["product"], "failures": 0, "created_at": "2026-12-05T04:03:56.507521+00:00", "follow_all": false, "last_error": null, "updated_at": "2026-12-05T04:03:56.507521+00:00", "blocked_sql": null, "fingerprint": "a477caea55ba8362f9deddfcfc2db30b", "pinned_node": "", "schema_name": "tenant_hooli", "desired_hash": "9f4f9dd1a8f4332595860cc0b5aacae6", "status_reason": "UpToDate", "last_applied_at": "2026-12-05T04:03:56.507521+00:00", "next_attempt_at": null, "status_changed_at": "2026-12-05T04:03:56.507521+00:00", "last_reconciled_at": "2026-12-05T04:03:56.507521+00:00"}', '[]', '2026-12-05 04:04:00.316707+00');


--
-- Data for Name: changed_schemas; Type: TABLE DATA; Schema: erpctl; Owner: -
--



--
-- Data for Name: events; Type: TABLE DATA; Schema: erpctl; Owner: -
--

INSERT INTO erpctl.events OVERRIDING SYSTEM VALUE VALUES (1, 'acme', '2026-12-05 04:03:56.136278+00', 'create', NULL, 'CREATE TABLE "categories" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "name" text NOT NULL, "description" text NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "categories_name_key" ON "categories" ("name");
CREATE TABLE "products" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "sku" text NOT NULL, "name" text NOT NULL, "description" text NULL, "price" numeric(12,2) NOT NULL DEFAULT 0, "category_id" bigint NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"), CONSTRAINT "products_category_id_fkey" FOREIGN KEY ("category_id") REFERENCES "categories" ("id") ON DELETE SET NULL);
CREATE UNIQUE INDEX "products_sku_key" ON "products" ("sku");
CREATE INDEX "products_name_idx" ON "products" ("name");
CREATE TABLE "warehouses" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "code" text NOT NULL, "name" text NOT NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "warehouses_code_key" ON "warehouses" ("code");
CREATE TABLE "stock_items" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "product_id" bigint NOT NULL, "warehouse_id" bigint NOT NULL, "quantity" integer NOT NULL DEFAULT 0, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"), CONSTRAINT "stock_items_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE NO ACTION, CONSTRAINT "stock_items_warehouse_id_fkey" FOREIGN KEY ("warehouse_id") REFERENCES "warehouses" ("id") ON DELETE NO ACTION, CONSTRAINT "stock_items_quantity_check" CHECK (quantity >= 0));
CREATE UNIQUE INDEX "stock_items_product_id_warehouse_id_key" ON "stock_items" ("product_id", "warehouse_id")', 24.683, 'applied', NULL);
INSERT INTO erpctl.events OVERRIDING SYSTEM VALUE VALUES (2, 'globex', '2026-12-05 04:03:56.260003+00', 'create', NULL, 'CREATE TABLE "categories" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "name" text NOT NULL, "description" text NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "categories_name_key" ON "categories" ("name");
CREATE TABLE "products" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "sku" text NOT NULL, "name" text NOT NULL, "description" text NULL, "price" numeric(12,2) NOT NULL DEFAULT 0, "category_id" bigint NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"), CONSTRAINT "products_category_id_fkey" FOREIGN KEY ("category_id") REFERENCES "categories" ("id") ON DELETE SET NULL);
CREATE UNIQUE INDEX "products_sku_key" ON "products" ("sku");
CREATE INDEX "products_name_idx" ON "products" ("name")', 24.954, 'applied', NULL);
INSERT INTO erpctl.events OVERRIDING SYSTEM VALUE VALUES (3, 'initech', '2026-12-05 04:03:56.384391+00', 'create', NULL, 'CREATE TABLE "categories" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "name" text NOT NULL, "description" text NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "categories_name_key" ON "categories" ("name");
CREATE TABLE "products" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "sku" text NOT NULL, "name" text NOT NULL, "description" text NULL, "price" numeric(12,2) NOT NULL DEFAULT 0, "category_id" bigint NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"), CONSTRAINT "products_category_id_fkey" FOREIGN KEY ("category_id") REFERENCES "categories" ("id") ON DELETE SET NULL);
CREATE UNIQUE INDEX "products_sku_key" ON "products" ("sku");
CREATE INDEX "products_name_idx" ON "products" ("name");
CREATE TABLE "warehouses" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "code" text NOT NULL, "name" text NOT NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "warehouses_code_key" ON "warehouses" ("code");
CREATE TABLE "stock_items" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "product_id" bigint NOT NULL, "warehouse_id" bigint NOT NULL, "quantity" integer NOT NULL DEFAULT 0, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"), CONSTRAINT "stock_items_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE NO ACTION, CONSTRAINT "stock_items_warehouse_id_fkey" FOREIGN KEY ("warehouse_id") REFERENCES "warehouses" ("id") ON DELETE NO ACTION, CONSTRAINT "stock_items_quantity_check" CHECK (quantity >= 0));
CREATE UNIQUE INDEX "stock_items_product_id_warehouse_id_key" ON "stock_items" ("product_id", "warehouse_id")', 18.24, 'applied', NULL);
INSERT INTO erpctl.events OVERRIDING SYSTEM VALUE VALUES (4, 'hooli', '2026-12-05 04:03:56.507521+00', 'create', NULL, 'CREATE TABLE "categories" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "name" text NOT NULL, "description" text NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "categories_name_key" ON "categories" ("name");
CREATE TABLE "products" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "sku" text NOT NULL, "name" text NOT NULL, "description" text NULL, "price" numeric(12,2) NOT NULL DEFAULT 0, "category_id" bigint NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"), CONSTRAINT "products_category_id_fkey" FOREIGN KEY ("category_id") REFERENCES "categories" ("id") ON DELETE SET NULL);
CREATE UNIQUE INDEX "products_sku_key" ON "products" ("sku");
CREATE INDEX "products_name_idx" ON "products" ("name")', 19.465, 'applied', NULL);
INSERT INTO erpctl.events OVERRIDING SYSTEM VALUE VALUES (5, 'acme', '2026-12-05 04:04:00.061047+00', 'apply', NULL, 'CREATE TYPE "order_status" AS ENUM (''draft'', ''done'');
CREATE TABLE "orders" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "status" "order_status" NOT NULL, "note" text NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"))', 9.146, 'applied', NULL);
INSERT INTO erpctl.events OVERRIDING SYSTEM VALUE VALUES (6, 'initech', '2026-12-05 04:04:00.200046+00', 'apply', NULL, 'CREATE TYPE "order_status" AS ENUM (''draft'', ''done'');
CREATE TABLE "orders" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "status" "order_status" NOT NULL, "note" text NULL, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), "created_by" text NULL, "updated_by" text NULL, PRIMARY KEY ("id"))', 5.389, 'applied', NULL);
INSERT INTO erpctl.events OVERRIDING SYSTEM VALUE VALUES (7, 'hooli', '2026-12-05 04:04:00.316707+00', 'delete', NULL, 'ALTER SCHEMA "tenant_hooli" RENAME TO "erpctl_arch_1_hooli"', 7.559, 'archived', NULL);


--
-- Data for Name: meta; Type: TABLE DATA; Schema: erpctl; Owner: -
--

INSERT INTO erpctl.meta VALUES ('catalog_hash', '07ce0b90944edbf32c3a4cb8b0cf91ee');
INSERT INTO erpctl.meta VALUES ('api_role', 'erpctl_api_b3ac19a6c407');
INSERT INTO erpctl.meta VALUES ('create_fingerprint:v2:a7ee81588bac2ecb506f29729198d4ae', '2491a407756e095b75601d2ce182a5dc');
INSERT INTO erpctl.meta VALUES ('create_fingerprint:v2:9f4f9dd1a8f4332595860cc0b5aacae6', 'a477caea55ba8362f9deddfcfc2db30b');
INSERT INTO erpctl.meta VALUES ('last_pass_at', '2026-12-05 04:04:00.212862+00');


--
-- Data for Name: migration_steps; Type: TABLE DATA; Schema: erpctl; Owner: -
--



--
-- Data for Name: rollouts; Type: TABLE DATA; Schema: erpctl; Owner: -
--

INSERT INTO erpctl.rollouts OVERRIDING SYSTEM VALUE VALUES (1, '6d00962656fc1fe2db20ecc574dcd5f2|2491a407756e095b75601d2ce182a5dc|a7ee81588bac2ecb506f29729198d4ae', '6d00962656fc1fe2db20ecc574dcd5f2', 'done', 2, 2, 0, 0, 2, 1, 1, '', '2026-12-05 04:04:00.195168+00', '2026-12-05 04:04:00.212446+00');


--
-- Data for Name: seeds; Type: TABLE DATA; Schema: erpctl; Owner: -
--

INSERT INTO erpctl.seeds VALUES ('acme', 'orders:989e4a71562effc1d2f7f569', '2026-12-05 04:04:00.061047+00');
INSERT INTO erpctl.seeds VALUES ('initech', 'orders:989e4a71562effc1d2f7f569', '2026-12-05 04:04:00.200046+00');


--
-- Data for Name: tenants; Type: TABLE DATA; Schema: erpctl; Owner: -
--

INSERT INTO erpctl.tenants VALUES ('globex', 'globex', 'tenant_globex', false, '{product}', 'Ready', NULL, NULL, '9f4f9dd1a8f4332595860cc0b5aacae6', 'a477caea55ba8362f9deddfcfc2db30b', '{"products": ["column:category_id", "column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:price", "column:sku", "column:updated_at", "column:updated_by", "constraint:products_category_id_fkey", "index:products_name_idx", "index:products_sku_key"], "categories": ["column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:updated_at", "column:updated_by", "index:categories_name_key"]}', 0, NULL, '2026-12-05 04:03:56.260003+00', '2026-12-05 04:03:56.260003+00', '2026-12-05 04:03:56.260003+00', '2026-12-05 04:03:56.260003+00', 'UpToDate', '2026-12-05 04:03:56.260003+00', '');
INSERT INTO erpctl.tenants VALUES ('acme', 'Acme Inc', 'tenant_acme', true, '{}', 'Ready', NULL, NULL, '6d00962656fc1fe2db20ecc574dcd5f2', '74d81e58e35ec0b1b1c01ac69411198f', '{"orders": ["column:created_at", "column:created_by", "column:id", "column:note", "column:status", "column:updated_at", "column:updated_by"], "~enums": ["enum:order_status"], "products": ["column:category_id", "column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:price", "column:sku", "column:updated_at", "column:updated_by", "constraint:products_category_id_fkey", "index:products_name_idx", "index:products_sku_key"], "categories": ["column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:updated_at", "column:updated_by", "index:categories_name_key"], "warehouses": ["column:code", "column:created_at", "column:created_by", "column:id", "column:name", "column:updated_at", "column:updated_by", "index:warehouses_code_key"], "stock_items": ["column:created_at", "column:created_by", "column:id", "column:product_id", "column:quantity", "column:updated_at", "column:updated_by", "column:warehouse_id", "constraint:stock_items_product_id_fkey", "constraint:stock_items_quantity_check", "constraint:stock_items_warehouse_id_fkey", "index:stock_items_product_id_warehouse_id_key"]}', 0, NULL, '2026-12-05 04:03:56.136278+00', '2026-12-05 04:04:00.061047+00', '2026-12-05 04:04:00.061047+00', '2026-12-05 04:04:00.061047+00', 'UpToDate', '2026-12-05 04:03:56.136278+00', '');
INSERT INTO erpctl.tenants VALUES ('initech', 'initech', 'tenant_initech', true, '{}', 'Ready', NULL, NULL, '6d00962656fc1fe2db20ecc574dcd5f2', '74d81e58e35ec0b1b1c01ac69411198f', '{"orders": ["column:created_at", "column:created_by", "column:id", "column:note", "column:status", "column:updated_at", "column:updated_by"], "~enums": ["enum:order_status"], "products": ["column:category_id", "column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:price", "column:sku", "column:updated_at", "column:updated_by", "constraint:products_category_id_fkey", "index:products_name_idx", "index:products_sku_key"], "categories": ["column:created_at", "column:created_by", "column:description", "column:id", "column:name", "column:updated_at", "column:updated_by", "index:categories_name_key"], "warehouses": ["column:code", "column:created_at", "column:created_by", "column:id", "column:name", "column:updated_at", "column:updated_by", "index:warehouses_code_key"], "stock_items": ["column:created_at", "column:created_by", "column:id", "column:product_id", "column:quantity", "column:updated_at", "column:updated_by", "column:warehouse_id", "constraint:stock_items_product_id_fkey", "constraint:stock_items_quantity_check", "constraint:stock_items_warehouse_id_fkey", "index:stock_items_product_id_warehouse_id_key"]}', 0, NULL, '2026-12-05 04:03:56.384391+00', '2026-12-05 04:04:00.200046+00', '2026-12-05 04:04:00.200046+00', '2026-12-05 04:04:00.200046+00', 'UpToDate', '2026-12-05 04:03:56.384391+00', '');


--
-- Data for Name: tokens; Type: TABLE DATA; Schema: erpctl; Owner: -
--

INSERT INTO erpctl.tokens OVERRIDING SYSTEM VALUE VALUES (1, 'acme', 'alice', '\x4a812a3327cb512006eb983663dfbae87bca39bdde21d399d570770383a3e5ae', '2026-12-05 04:03:56.62434+00', NULL);
INSERT INTO erpctl.tokens OVERRIDING SYSTEM VALUE VALUES (2, 'globex', 'bob', '\x5bf95377e8dff9172246c15b0b63985f7b7fb4d37d7f77a0b862b132027f2a60', '2026-12-05 04:03:56.71917+00', '2026-12-05 04:03:59.78869+00');


--
-- Data for Name: categories; Type: TABLE DATA; Schema: erpctl_arch_1_hooli; Owner: -
--



--
-- Data for Name: products; Type: TABLE DATA; Schema: erpctl_arch_1_hooli; Owner: -
--



--
-- Data for Name: categories; Type: TABLE DATA; Schema: tenant_acme; Owner: -
--

INSERT INTO tenant_acme.categories VALUES (1, 'Tools', NULL, '2026-12-05 04:03:59.925633+00', '2026-12-05 04:03:59.925633+00', NULL, NULL);


--
-- Data for Name: orders; Type: TABLE DATA; Schema: tenant_acme; Owner: -
--

INSERT INTO tenant_acme.orders VALUES (1, 'draft', 'seeded', '2026-12-05 04:04:00.061047+00', '2026-12-05 04:04:00.061047+00', NULL, NULL);


--
-- Data for Name: products; Type: TABLE DATA; Schema: tenant_acme; Owner: -
--

INSERT INTO tenant_acme.products VALUES (1, 'A-1', 'Anvil', NULL, 9.50, 1, '2026-12-05 04:03:59.925633+00', '2026-12-05 04:03:59.925633+00', NULL, NULL);


--
-- Data for Name: stock_items; Type: TABLE DATA; Schema: tenant_acme; Owner: -
--



--
-- Data for Name: warehouses; Type: TABLE DATA; Schema: tenant_acme; Owner: -
--



--
-- Data for Name: categories; Type: TABLE DATA; Schema: tenant_globex; Owner: -
--

INSERT INTO tenant_globex.categories VALUES (1, 'Toys', NULL, '2026-12-05 04:03:59.925633+00', '2026-12-05 04:03:59.925633+00', NULL, NULL);


--
-- Data for Name: products; Type: TABLE DATA; Schema: tenant_globex; Owner: -
--



--
-- Data for Name: categories; Type: TABLE DATA; Schema: tenant_initech; Owner: -
--



--
-- Data for Name: orders; Type: TABLE DATA; Schema: tenant_initech; Owner: -
--

INSERT INTO tenant_initech.orders VALUES (1, 'draft', 'seeded', '2026-12-05 04:04:00.200046+00', '2026-12-05 04:04:00.200046+00', NULL, NULL);


--
-- Data for Name: products; Type: TABLE DATA; Schema: tenant_initech; Owner: -
--



--
-- Data for Name: stock_items; Type: TABLE DATA; Schema: tenant_initech; Owner: -
--



--
-- Data for Name: warehouses; Type: TABLE DATA; Schema: tenant_initech; Owner: -
--

INSERT INTO tenant_initech.warehouses VALUES (1, 'W1', 'Main', '2026-12-05 04:03:59.925633+00', '2026-12-05 04:03:59.925633+00', NULL, NULL);


--
-- Name: archives_id_seq; Type: SEQUENCE SET; Schema: erpctl; Owner: -
--

SELECT pg_catalog.setval('erpctl.archives_id_seq', 1, true);


--
-- Name: events_id_seq; Type: SEQUENCE SET; Schema: erpctl; Owner: -
--

SELECT pg_catalog.setval('erpctl.events_id_seq', 7, true);


--
-- Name: rollouts_id_seq; Type: SEQUENCE SET; Schema: erpctl; Owner: -
--

SELECT pg_catalog.setval('erpctl.rollouts_id_seq', 1, true);


--
-- Name: tokens_id_seq; Type: SEQUENCE SET; Schema: erpctl; Owner: -
--

SELECT pg_catalog.setval('erpctl.tokens_id_seq', 2, true);


--
-- Name: categories_id_seq; Type: SEQUENCE SET; Schema: erpctl_arch_1_hooli; Owner: -
--

SELECT pg_catalog.setval('erpctl_arch_1_hooli.categories_id_seq', 1, false);


--
-- Name: products_id_seq; Type: SEQUENCE SET; Schema: erpctl_arch_1_hooli; Owner: -
--

SELECT pg_catalog.setval('erpctl_arch_1_hooli.products_id_seq', 1, false);


--
-- Name: categories_id_seq; Type: SEQUENCE SET; Schema: tenant_acme; Owner: -
--

SELECT pg_catalog.setval('tenant_acme.categories_id_seq', 1, true);


--
-- Name: orders_id_seq; Type: SEQUENCE SET; Schema: tenant_acme; Owner: -
--

SELECT pg_catalog.setval('tenant_acme.orders_id_seq', 1, true);


--
-- Name: products_id_seq; Type: SEQUENCE SET; Schema: tenant_acme; Owner: -
--

SELECT pg_catalog.setval('tenant_acme.products_id_seq', 1, true);


--
-- Name: stock_items_id_seq; Type: SEQUENCE SET; Schema: tenant_acme; Owner: -
--

SELECT pg_catalog.setval('tenant_acme.stock_items_id_seq', 1, false);


--
-- Name: warehouses_id_seq; Type: SEQUENCE SET; Schema: tenant_acme; Owner: -
--

SELECT pg_catalog.setval('tenant_acme.warehouses_id_seq', 1, false);


--
-- Name: categories_id_seq; Type: SEQUENCE SET; Schema: tenant_globex; Owner: -
--

SELECT pg_catalog.setval('tenant_globex.categories_id_seq', 1, true);


--
-- Name: products_id_seq; Type: SEQUENCE SET; Schema: tenant_globex; Owner: -
--

SELECT pg_catalog.setval('tenant_globex.products_id_seq', 1, false);


--
-- Name: categories_id_seq; Type: SEQUENCE SET; Schema: tenant_initech; Owner: -
--

SELECT pg_catalog.setval('tenant_initech.categories_id_seq', 1, false);


--
-- Name: orders_id_seq; Type: SEQUENCE SET; Schema: tenant_initech; Owner: -
--

SELECT pg_catalog.setval('tenant_initech.orders_id_seq', 1, true);


--
-- Name: products_id_seq; Type: SEQUENCE SET; Schema: tenant_initech; Owner: -
--

SELECT pg_catalog.setval('tenant_initech.products_id_seq', 1, false);


--
-- Name: stock_items_id_seq; Type: SEQUENCE SET; Schema: tenant_initech; Owner: -
--

SELECT pg_catalog.setval('tenant_initech.stock_items_id_seq', 1, false);


--
-- Name: warehouses_id_seq; Type: SEQUENCE SET; Schema: tenant_initech; Owner: -
--

SELECT pg_catalog.setval('tenant_initech.warehouses_id_seq', 1, true);


--
-- Name: archives archives_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.archives
    ADD CONSTRAINT archives_pkey PRIMARY KEY (id);


--
-- Name: changed_schemas changed_schemas_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.changed_schemas
    ADD CONSTRAINT changed_schemas_pkey PRIMARY KEY (schema_name);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);


--
-- Name: meta meta_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.meta
    ADD CONSTRAINT meta_pkey PRIMARY KEY (key);


--
-- Name: migration_steps migration_steps_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.migration_steps
    ADD CONSTRAINT migration_steps_pkey PRIMARY KEY (tenant, step);


--
-- Name: rollouts rollouts_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.rollouts
    ADD CONSTRAINT rollouts_pkey PRIMARY KEY (id);


--
-- Name: seeds seeds_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.seeds
    ADD CONSTRAINT seeds_pkey PRIMARY KEY (tenant, key);


--
-- Name: tenants tenants_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (slug);


--
-- Name: tokens tokens_pkey; Type: CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.tokens
    ADD CONSTRAINT tokens_pkey PRIMARY KEY (id);


--
-- Name: categories categories_pkey; Type: CONSTRAINT; Schema: erpctl_arch_1_hooli; Owner: -
--

ALTER TABLE ONLY erpctl_arch_1_hooli.categories
    ADD CONSTRAINT categories_pkey PRIMARY KEY (id);


--
-- Name: products products_pkey; Type: CONSTRAINT; Schema: erpctl_arch_1_hooli; Owner: -
--

ALTER TABLE ONLY erpctl_arch_1_hooli.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);


--
-- Name: categories categories_pkey; Type: CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.categories
    ADD CONSTRAINT categories_pkey PRIMARY KEY (id);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: products products_pkey; Type: CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);


--
-- Name: stock_items stock_items_pkey; Type: CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.stock_items
    ADD CONSTRAINT stock_items_pkey PRIMARY KEY (id);


--
-- Name: warehouses warehouses_pkey; Type: CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.warehouses
    ADD CONSTRAINT warehouses_pkey PRIMARY KEY (id);


--
-- Name: categories categories_pkey; Type: CONSTRAINT; Schema: tenant_globex; Owner: -
--

ALTER TABLE ONLY tenant_globex.categories
    ADD CONSTRAINT categories_pkey PRIMARY KEY (id);


--
-- Name: products products_pkey; Type: CONSTRAINT; Schema: tenant_globex; Owner: -
--

ALTER TABLE ONLY tenant_globex.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);


--
-- Name: categories categories_pkey; Type: CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.categories
    ADD CONSTRAINT categories_pkey PRIMARY KEY (id);


--
-- Name: orders orders_pkey; Type: CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);


--
-- Name: products products_pkey; Type: CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (id);


--
-- Name: stock_items stock_items_pkey; Type: CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.stock_items
    ADD CONSTRAINT stock_items_pkey PRIMARY KEY (id);


--
-- Name: warehouses warehouses_pkey; Type: CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.warehouses
    ADD CONSTRAINT warehouses_pkey PRIMARY KEY (id);


--
-- Name: archives_schema_name_key; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE UNIQUE INDEX archives_schema_name_key ON erpctl.archives USING btree (schema_name);


--
-- Name: archives_slug_key; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE UNIQUE INDEX archives_slug_key ON erpctl.archives USING btree (slug);


--
-- Name: events_tenant_id_idx; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE INDEX events_tenant_id_idx ON erpctl.events USING btree (tenant, id);


--
-- Name: rollouts_group_key_idx; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE INDEX rollouts_group_key_idx ON erpctl.rollouts USING btree (group_key, id);


--
-- Name: tenants_failed_next_attempt_idx; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE INDEX tenants_failed_next_attempt_idx ON erpctl.tenants USING btree (next_attempt_at) WHERE (status = 'Failed'::text);


--
-- Name: tenants_schema_name_key; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE UNIQUE INDEX tenants_schema_name_key ON erpctl.tenants USING btree (schema_name);


--
-- Name: tokens_hash_key; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE UNIQUE INDEX tokens_hash_key ON erpctl.tokens USING btree (hash);


--
-- Name: tokens_tenant_idx; Type: INDEX; Schema: erpctl; Owner: -
--

CREATE INDEX tokens_tenant_idx ON erpctl.tokens USING btree (tenant);


--
-- Name: categories_name_key; Type: INDEX; Schema: erpctl_arch_1_hooli; Owner: -
--

CREATE UNIQUE INDEX categories_name_key ON erpctl_arch_1_hooli.categories USING btree (name);


--
-- Name: products_name_idx; Type: INDEX; Schema: erpctl_arch_1_hooli; Owner: -
--

CREATE INDEX products_name_idx ON erpctl_arch_1_hooli.products USING btree (name);


--
-- Name: products_sku_key; Type: INDEX; Schema: erpctl_arch_1_hooli; Owner: -
--

CREATE UNIQUE INDEX products_sku_key ON erpctl_arch_1_hooli.products USING btree (sku);


--
-- Name: categories_name_key; Type: INDEX; Schema: tenant_acme; Owner: -
--

CREATE UNIQUE INDEX categories_name_key ON tenant_acme.categories USING btree (name);


--
-- Name: products_name_idx; Type: INDEX; Schema: tenant_acme; Owner: -
--

CREATE INDEX products_name_idx ON tenant_acme.products USING btree (name);


--
-- Name: products_sku_key; Type: INDEX; Schema: tenant_acme; Owner: -
--

CREATE UNIQUE INDEX products_sku_key ON tenant_acme.products USING btree (sku);


--
-- Name: stock_items_product_id_warehouse_id_key; Type: INDEX; Schema: tenant_acme; Owner: -
--

CREATE UNIQUE INDEX stock_items_product_id_warehouse_id_key ON tenant_acme.stock_items USING btree (product_id, warehouse_id);


--
-- Name: warehouses_code_key; Type: INDEX; Schema: tenant_acme; Owner: -
--

CREATE UNIQUE INDEX warehouses_code_key ON tenant_acme.warehouses USING btree (code);


--
-- Name: categories_name_key; Type: INDEX; Schema: tenant_globex; Owner: -
--

CREATE UNIQUE INDEX categories_name_key ON tenant_globex.categories USING btree (name);


--
-- Name: products_name_idx; Type: INDEX; Schema: tenant_globex; Owner: -
--

CREATE INDEX products_name_idx ON tenant_globex.products USING btree (name);


--
-- Name: products_sku_key; Type: INDEX; Schema: tenant_globex; Owner: -
--

CREATE UNIQUE INDEX products_sku_key ON tenant_globex.products USING btree (sku);


--
-- Name: categories_name_key; Type: INDEX; Schema: tenant_initech; Owner: -
--

CREATE UNIQUE INDEX categories_name_key ON tenant_initech.categories USING btree (name);


--
-- Name: products_name_idx; Type: INDEX; Schema: tenant_initech; Owner: -
--

CREATE INDEX products_name_idx ON tenant_initech.products USING btree (name);


--
-- Name: products_sku_key; Type: INDEX; Schema: tenant_initech; Owner: -
--

CREATE UNIQUE INDEX products_sku_key ON tenant_initech.products USING btree (sku);


--
-- Name: stock_items_product_id_warehouse_id_key; Type: INDEX; Schema: tenant_initech; Owner: -
--

CREATE UNIQUE INDEX stock_items_product_id_warehouse_id_key ON tenant_initech.stock_items USING btree (product_id, warehouse_id);


--
-- Name: warehouses_code_key; Type: INDEX; Schema: tenant_initech; Owner: -
--

CREATE UNIQUE INDEX warehouses_code_key ON tenant_initech.warehouses USING btree (code);


--
-- Name: tokens tokens_tenant_fkey; Type: FK CONSTRAINT; Schema: erpctl; Owner: -
--

ALTER TABLE ONLY erpctl.tokens
    ADD CONSTRAINT tokens_tenant_fkey FOREIGN KEY (tenant) REFERENCES erpctl.tenants(slug) ON DELETE CASCADE;


--
-- Name: products products_category_id_fkey; Type: FK CONSTRAINT; Schema: erpctl_arch_1_hooli; Owner: -
--

ALTER TABLE ONLY erpctl_arch_1_hooli.products
    ADD CONSTRAINT products_category_id_fkey FOREIGN KEY (category_id) REFERENCES erpctl_arch_1_hooli.categories(id) ON DELETE SET NULL;


--
-- Name: products products_category_id_fkey; Type: FK CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.products
    ADD CONSTRAINT products_category_id_fkey FOREIGN KEY (category_id) REFERENCES tenant_acme.categories(id) ON DELETE SET NULL;


--
-- Name: stock_items stock_items_product_id_fkey; Type: FK CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.stock_items
    ADD CONSTRAINT stock_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES tenant_acme.products(id);


--
-- Name: stock_items stock_items_warehouse_id_fkey; Type: FK CONSTRAINT; Schema: tenant_acme; Owner: -
--

ALTER TABLE ONLY tenant_acme.stock_items
    ADD CONSTRAINT stock_items_warehouse_id_fkey FOREIGN KEY (warehouse_id) REFERENCES tenant_acme.warehouses(id);


--
-- Name: products products_category_id_fkey; Type: FK CONSTRAINT; Schema: tenant_globex; Owner: -
--

ALTER TABLE ONLY tenant_globex.products
    ADD CONSTRAINT products_category_id_fkey FOREIGN KEY (category_id) REFERENCES tenant_globex.categories(id) ON DELETE SET NULL;


--
-- Name: products products_category_id_fkey; Type: FK CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.products
    ADD CONSTRAINT products_category_id_fkey FOREIGN KEY (category_id) REFERENCES tenant_initech.categories(id) ON DELETE SET NULL;


--
-- Name: stock_items stock_items_product_id_fkey; Type: FK CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.stock_items
    ADD CONSTRAINT stock_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES tenant_initech.products(id);


--
-- Name: stock_items stock_items_warehouse_id_fkey; Type: FK CONSTRAINT; Schema: tenant_initech; Owner: -
--

ALTER TABLE ONLY tenant_initech.stock_items
    ADD CONSTRAINT stock_items_warehouse_id_fkey FOREIGN KEY (warehouse_id) REFERENCES tenant_initech.warehouses(id);


--
-- Name: erpctl_schema_changed; Type: EVENT TRIGGER; Schema: -; Owner: -
--

CREATE EVENT TRIGGER erpctl_schema_changed ON ddl_command_end
   EXECUTE FUNCTION erpctl.note_schema_change();


--
-- Name: erpctl_schema_dropped; Type: EVENT TRIGGER; Schema: -; Owner: -
--

CREATE EVENT TRIGGER erpctl_schema_dropped ON sql_drop
   EXECUTE FUNCTION erpctl.note_schema_change();


--
-- PostgreSQL database dump complete
--


