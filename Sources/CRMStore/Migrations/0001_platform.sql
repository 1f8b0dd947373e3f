-- The platform: tenants, users, teams, tokens, accounts, contacts, the change log and idempotency keys.
--
-- Conventions (docs/DESIGN.md): every tenant table leads its primary key and foreign keys with
-- tenant_id (ready for Citus distribution by tenant_id); row-level security on tenant_id is the
-- backstop behind the application's own filters; rows carry version/created/updated columns.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- crmd's request connections SET ROLE to crm_app, which owns nothing and bypasses nothing, so that
-- row-level security applies to them even when crmd logs in as the tables' owner or a superuser.
DO $$
BEGIN
  CREATE ROLE crm_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;
GRANT crm_app TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO crm_app;

-- The tenant of the current transaction, set by the store with set_config('crm.tenant_id', …, true).
CREATE FUNCTION crm_current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('crm.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
  id uuid PRIMARY KEY,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  is_system boolean NOT NULL DEFAULT false,
  sharing jsonb NOT NULL DEFAULT '{}'::jsonb,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tenants_one_system ON tenants (is_system) WHERE is_system;

CREATE TABLE teams (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  parent_team_id uuid,
  manager_id uuid,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, parent_team_id) REFERENCES teams (tenant_id, id),
  CHECK (parent_team_id IS DISTINCT FROM id)
);
CREATE UNIQUE INDEX teams_name ON teams (tenant_id, lower(name));

CREATE TABLE users (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
  role text NOT NULL CHECK (role IN ('admin', 'manager', 'sales_rep', 'service_agent', 'integration')),
  team_id uuid,
  is_active boolean NOT NULL DEFAULT true,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email));
CREATE INDEX users_team ON users (tenant_id, team_id);

ALTER TABLE teams ADD FOREIGN KEY (tenant_id, manager_id) REFERENCES users (tenant_id, id);
CREATE INDEX teams_manager ON teams (tenant_id, manager_id);
CREATE INDEX teams_parent ON teams (tenant_id, parent_team_id);

-- Bearer tokens: only the SHA-256 of the secret is stored. token_hash is unique across tenants
-- because a request names no tenant before it is authenticated (under Citus: a reference table).
CREATE TABLE api_tokens (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX api_tokens_user ON api_tokens (tenant_id, user_id);

CREATE TABLE accounts (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  owner_id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  website text CHECK (length(website) <= 2048),
  domain text CHECK (length(domain) <= 253),
  industry text CHECK (length(industry) <= 100),
  account_type text NOT NULL DEFAULT 'unspecified'
    CHECK (account_type IN ('unspecified', 'prospect', 'customer', 'partner', 'reseller', 'vendor', 'competitor', 'other')),
  tier text NOT NULL DEFAULT 'unspecified' CHECK (tier IN ('unspecified', 'strategic', 'key', 'standard', 'long_tail')),
  employee_count integer CHECK (employee_count >= 0),
  annual_revenue_currency text CHECK (annual_revenue_currency ~ '^[A-Z]{3}$'),
  annual_revenue_units bigint,
  annual_revenue_nanos integer CHECK (annual_revenue_nanos BETWEEN -999999999 AND 999999999),
  phone text CHECK (length(phone) <= 64),
  billing_address jsonb,
  shipping_address jsonb,
  parent_id uuid,
  description text CHECK (length(description) <= 10000),
  external_id text CHECK (length(external_id) <= 255),
  tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, parent_id) REFERENCES accounts (tenant_id, id),
  CHECK (parent_id IS DISTINCT FROM id),
  CHECK ((annual_revenue_currency IS NULL) = (annual_revenue_units IS NULL))
);
CREATE UNIQUE INDEX accounts_external_id ON accounts (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX accounts_by_name ON accounts (tenant_id, (lower(name) COLLATE "C"), id);
CREATE INDEX accounts_by_update ON accounts (tenant_id, updated_at DESC, id DESC);
CREATE INDEX accounts_by_owner ON accounts (tenant_id, owner_id, (lower(name) COLLATE "C"), id);
CREATE INDEX accounts_by_domain ON accounts (tenant_id, domain) WHERE domain IS NOT NULL;
CREATE INDEX accounts_by_parent ON accounts (tenant_id, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX accounts_by_tag ON accounts USING gin (tags);
CREATE INDEX accounts_name_trgm ON accounts USING gin (name gin_trgm_ops);

CREATE TABLE contacts (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  owner_id uuid NOT NULL,
  account_id uuid,
  first_name text CHECK (length(first_name) <= 100),
  last_name text CHECK (length(last_name) <= 100),
  title text CHECK (length(title) <= 128),
  department text CHECK (length(department) <= 128),
  emails jsonb NOT NULL DEFAULT '[]'::jsonb,
  email_addresses text[] NOT NULL DEFAULT '{}',
  phones jsonb NOT NULL DEFAULT '[]'::jsonb,
  phone_numbers text[] NOT NULL DEFAULT '{}',
  address jsonb,
  email_opt_out boolean NOT NULL DEFAULT false,
  phone_opt_out boolean NOT NULL DEFAULT false,
  description text CHECK (length(description) <= 10000),
  external_id text CHECK (length(external_id) <= 255),
  tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
  CHECK (coalesce(first_name, last_name) IS NOT NULL)
);
CREATE UNIQUE INDEX contacts_external_id ON contacts (tenant_id, external_id) WHERE external_id IS NOT NULL;
-- The sort key of contacts: "last first", lower case, compared by code point.
CREATE FUNCTION crm_contact_sort_name(last_name text, first_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lower(coalesce(last_name, '') || ' ' || coalesce(first_name, '')) COLLATE "C" $$;
CREATE INDEX contacts_by_name ON contacts (tenant_id, crm_contact_sort_name(last_name, first_name), id);
CREATE INDEX contacts_by_update ON contacts (tenant_id, updated_at DESC, id DESC);
CREATE INDEX contacts_by_owner ON contacts (tenant_id, owner_id);
CREATE INDEX contacts_by_account ON contacts (tenant_id, account_id, crm_contact_sort_name(last_name, first_name), id)
  WHERE account_id IS NOT NULL;
CREATE INDEX contacts_by_email ON contacts USING gin (email_addresses);
CREATE INDEX contacts_by_tag ON contacts USING gin (tags);
CREATE INDEX contacts_first_name ON contacts (tenant_id, (lower(first_name) COLLATE "C"));
CREATE INDEX contacts_last_name ON contacts (tenant_id, (lower(last_name) COLLATE "C"));

-- One row per changed record per mutation, written in the mutation's transaction. Audit history,
-- the change feed, webhooks and sync all read it.
CREATE TABLE change_log (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  record_type text NOT NULL,
  record_id uuid NOT NULL,
  operation text NOT NULL CHECK (operation IN ('create', 'update', 'archive', 'restore')),
  actor_id uuid,
  request_id text,
  changed_at timestamptz NOT NULL DEFAULT now(),
  changes jsonb NOT NULL,
  PRIMARY KEY (tenant_id, sequence)
);
CREATE INDEX change_log_by_record ON change_log (tenant_id, record_type, record_id, sequence DESC);

-- Creates that carried a request_id: a repeat finds the first result here and writes nothing.
CREATE TABLE idempotency_keys (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  method text NOT NULL,
  request_id text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 128),
  record_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, method, request_id)
);

-- Row-level security: the backstop. crm_app sees only the rows of crm_current_tenant().
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['teams', 'users', 'api_tokens', 'accounts', 'contacts', 'change_log', 'idempotency_keys'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant())', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO crm_app', t);
  END LOOP;
END
$$;
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants TO crm_app USING (id = crm_current_tenant());
GRANT SELECT, UPDATE ON tenants TO crm_app;
GRANT DELETE ON idempotency_keys TO crm_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO crm_app;

-- Authentication runs before the tenant is known, so it cannot go through row-level security: this
-- function (owned by the migrating role, which the policies do not bind) finds a live token by its
-- hash and returns just what the request needs.
CREATE FUNCTION crm_authenticate(p_hash bytea)
RETURNS TABLE (tenant_id uuid, user_id uuid, role text, is_system boolean, sharing jsonb, token_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT t.tenant_id, u.id, u.role, tn.is_system, tn.sharing, t.id
  FROM api_tokens t
  JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id
  JOIN tenants tn ON tn.id = t.tenant_id
  WHERE t.token_hash = p_hash
    AND t.revoked_at IS NULL
    AND (t.expires_at IS NULL OR t.expires_at > now())
    AND u.is_active
$$;
REVOKE ALL ON FUNCTION crm_authenticate(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_authenticate(bytea) TO crm_app;

-- Creating a tenant inserts its first row before any tenant is current: also a definer function.
CREATE FUNCTION crm_create_tenant(p_id uuid, p_name text, p_is_system boolean)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ INSERT INTO tenants (id, name, is_system) VALUES (p_id, p_name, p_is_system) $$;
REVOKE ALL ON FUNCTION crm_create_tenant(uuid, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_create_tenant(uuid, text, boolean) TO crm_app;
