-- Collections (docs/billing.md, "Collections"): per account an assigned collector (a new role that
-- reads the billing data of the accounts it collects), an escalation and a credit hold set by a
-- collector or a dunning level, and a promise to pay; per tenant the dunning levels; per invoice the
-- levels applied, each once: a firing row is inserted before its actions run, in their transaction,
-- so two nodes (or two passes) never apply a level twice.

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
  CHECK (role IN ('admin', 'manager', 'sales_rep', 'service_agent', 'integration', 'collector'));
ALTER TABLE field_security DROP CONSTRAINT field_security_role_check;
ALTER TABLE field_security ADD CONSTRAINT field_security_role_check
  CHECK (role IN ('manager', 'sales_rep', 'service_agent', 'integration', 'collector'));
ALTER TABLE tasks DROP CONSTRAINT tasks_alert_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_alert_kind_check
  CHECK (alert_kind IN ('stale_deal', 'expiring_holding', 'recycled', 'dunning', 'broken_promise'));

CREATE TABLE dunning_levels (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  name text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,49}$'),
  days_after_due integer NOT NULL CHECK (days_after_due BETWEEN -365 AND 3650),
  task_for text NOT NULL CHECK (task_for IN ('none', 'owner', 'collector')),
  task_subject text CHECK (length(task_subject) BETWEEN 1 AND 200),
  add_tag text CHECK (length(add_tag) BETWEEN 1 AND 64),
  credit_hold boolean NOT NULL DEFAULT false,
  escalate_to text CHECK (escalate_to IN ('needs_action', 'in_collections')),
  PRIMARY KEY (tenant_id, name),
  UNIQUE (tenant_id, days_after_due)
);

CREATE TABLE account_collections (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  account_id uuid NOT NULL,
  -- What the change log and the access checks name the collection by: its account's id.
  id uuid GENERATED ALWAYS AS (account_id) STORED,
  collector_id uuid,
  escalation text CHECK (escalation IN ('needs_action', 'in_collections')),
  credit_hold boolean NOT NULL DEFAULT false,
  promise_currency text CHECK (promise_currency ~ '^[A-Z]{3}$'),
  promise_amount numeric(28, 9) CHECK (promise_amount > 0),
  promise_pay_by date,
  promise_made_on date,
  promise_note text CHECK (length(promise_note) <= 2000),
  promise_state text CHECK (promise_state IN ('open', 'kept', 'broken', 'cancelled')),
  promise_made_by uuid,
  last_dunning_level text,
  last_dunning_at timestamptz,
  written_off_at timestamptz,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid,
  PRIMARY KEY (tenant_id, account_id),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
  FOREIGN KEY (tenant_id, collector_id) REFERENCES users (tenant_id, id),
  CHECK ((promise_state IS NULL) = (promise_amount IS NULL)),
  CHECK ((promise_amount IS NULL) = (promise_currency IS NULL)),
  CHECK ((promise_amount IS NULL) = (promise_pay_by IS NULL)),
  CHECK ((promise_amount IS NULL) = (promise_made_on IS NULL)),
  CHECK (promise_pay_by >= promise_made_on)
);
CREATE UNIQUE INDEX account_collections_by_id ON account_collections (tenant_id, id);
CREATE INDEX account_collections_by_collector ON account_collections (tenant_id, collector_id, account_id)
  WHERE collector_id IS NOT NULL;
-- The job's reads: promises falling due, and escalations or holds to clear.
CREATE INDEX account_collections_open_promises ON account_collections (tenant_id, promise_pay_by)
  WHERE promise_state = 'open';
CREATE INDEX account_collections_escalated ON account_collections (tenant_id, account_id)
  WHERE escalation IS NOT NULL OR credit_hold;

CREATE TABLE dunning_firings (
  tenant_id uuid NOT NULL,
  invoice_id uuid NOT NULL,
  level_name text NOT NULL,
  level_days integer NOT NULL,
  fired_on date NOT NULL,
  fired_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, invoice_id, level_name),
  FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE
);

-- The day each tenant's dunning pass last went through all its invoices: dunning counts days, so the
-- pass runs once a day, and again the same day only when `stale` (an open invoice pushed, a promise
-- withdrawn since; changing the levels deletes the row).
CREATE TABLE dunning_runs (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
  completed_on date NOT NULL,
  stale boolean NOT NULL DEFAULT false
);

-- The tenants with dunning levels or promises to watch (the job runs without a tenant).
CREATE FUNCTION crm_collection_tenants()
RETURNS TABLE (tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT tenant_id FROM dunning_levels
  UNION
  SELECT tenant_id FROM account_collections WHERE promise_state = 'open' OR escalation IS NOT NULL OR credit_hold
$$;
REVOKE ALL ON FUNCTION crm_collection_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_collection_tenants() TO crm_app;

ALTER TABLE dunning_levels ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dunning_levels TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, DELETE ON dunning_levels TO crm_app;

ALTER TABLE account_collections ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON account_collections TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON account_collections TO crm_app;

ALTER TABLE dunning_firings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dunning_firings TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON dunning_firings TO crm_app;

ALTER TABLE dunning_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dunning_runs TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON dunning_runs TO crm_app;
