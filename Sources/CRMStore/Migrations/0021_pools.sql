-- The shared pool (公海): leads and accounts nobody owns, which pool members claim, within hold
-- limits and a re-claim cooldown, and which return to the pool when their holder lets them go stale.
--
-- A pooled record has no owner (owner_id NULL) and sits in one pool (pool_id). A claimed record keeps
-- the pool it came from (claimed_from_pool_id) and when (claimed_at): hold limits count those, and
-- recycling reads them.

CREATE TABLE pools (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  record_type text NOT NULL CHECK (record_type IN ('lead', 'account')),
  description text CHECK (length(description) <= 1000),
  -- Records one member may hold from this pool at once; NULL: no pool limit (the tenant's may apply).
  hold_limit integer CHECK (hold_limit >= 0),
  -- Whether closed records (converted or disqualified leads; accounts with a won deal) count.
  count_closed boolean NOT NULL DEFAULT false,
  -- Days a user who released (or lost to recycling) a record must wait to claim it again.
  reclaim_cooldown_days integer NOT NULL DEFAULT 0 CHECK (reclaim_cooldown_days BETWEEN 0 AND 3650),
  -- Recycling: a held record returns when it has had no qualifying interaction for this many days
  -- since it was claimed or last worked (NULL: never).
  recycle_after_days integer CHECK (recycle_after_days BETWEEN 1 AND 3650),
  -- Accounts: also when no open deal of theirs changed stage for this many days (NULL: not checked).
  recycle_no_progress_days integer CHECK (recycle_no_progress_days BETWEEN 1 AND 3650),
  -- No recycling in the first days after a claim.
  protection_days integer NOT NULL DEFAULT 0 CHECK (protection_days BETWEEN 0 AND 3650),
  -- Holders hear about a coming return this many days before it.
  warning_days integer NOT NULL DEFAULT 3 CHECK (warning_days BETWEEN 0 AND 365),
  -- Interaction kinds that count as working a record.
  qualifying_kinds text[] NOT NULL DEFAULT '{call,meeting,visit,email,chat,sms}',
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX pools_name ON pools (tenant_id, lower(name)) WHERE archived_at IS NULL;

CREATE TABLE pool_members (
  tenant_id uuid NOT NULL,
  pool_id uuid NOT NULL,
  user_id uuid NOT NULL,
  -- Pool admins assign pooled records, move records in and change the pool's members.
  is_admin boolean NOT NULL DEFAULT false,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, pool_id, user_id),
  FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX pool_members_by_user ON pool_members (tenant_id, user_id);

-- Tenant-wide hold limits per user, across all pools of a record type (the lower of this and a
-- pool's limit applies).
ALTER TABLE tenants ADD COLUMN lead_hold_limit integer CHECK (lead_hold_limit >= 0);
ALTER TABLE tenants ADD COLUMN account_hold_limit integer CHECK (account_hold_limit >= 0);

ALTER TABLE accounts ALTER COLUMN owner_id DROP NOT NULL;
ALTER TABLE accounts ADD COLUMN pool_id uuid;
ALTER TABLE accounts ADD CONSTRAINT accounts_owner_or_pool CHECK (owner_id IS NOT NULL OR pool_id IS NOT NULL);
ALTER TABLE accounts ADD CONSTRAINT accounts_pool_fkey FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id);
ALTER TABLE leads ADD CONSTRAINT leads_pool_fkey FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id);
ALTER TABLE leads ADD CONSTRAINT leads_owner_xor_pool CHECK (owner_id IS NULL OR pool_id IS NULL);
ALTER TABLE accounts ADD CONSTRAINT accounts_owner_xor_pool CHECK (owner_id IS NULL OR pool_id IS NULL);

ALTER TABLE leads ADD COLUMN claimed_from_pool_id uuid, ADD COLUMN claimed_at timestamptz;
ALTER TABLE accounts ADD COLUMN claimed_from_pool_id uuid, ADD COLUMN claimed_at timestamptz;

CREATE INDEX leads_in_pool ON leads (tenant_id, pool_id, updated_at DESC, id) WHERE pool_id IS NOT NULL;
CREATE INDEX accounts_in_pool ON accounts (tenant_id, pool_id, updated_at DESC, id) WHERE pool_id IS NOT NULL;
-- Hold counts and recycling scans: held records by holder and by pool.
CREATE INDEX leads_held ON leads (tenant_id, owner_id, claimed_from_pool_id) WHERE claimed_from_pool_id IS NOT NULL;
CREATE INDEX accounts_held ON accounts (tenant_id, owner_id, claimed_from_pool_id) WHERE claimed_from_pool_id IS NOT NULL;
CREATE INDEX leads_held_by_pool ON leads (tenant_id, claimed_from_pool_id, claimed_at) WHERE claimed_from_pool_id IS NOT NULL;
CREATE INDEX accounts_held_by_pool ON accounts (tenant_id, claimed_from_pool_id, claimed_at)
  WHERE claimed_from_pool_id IS NOT NULL;

-- Every return to a pool (release, recycling, a manager's move): the re-claim cooldown reads it, and
-- it keeps the reason code and note of each.
CREATE TABLE pool_returns (
  tenant_id uuid NOT NULL,
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  pool_id uuid NOT NULL,
  record_type text NOT NULL CHECK (record_type IN ('lead', 'account')),
  record_id uuid NOT NULL,
  -- Who held it (NULL when it was not held).
  user_id uuid,
  kind text NOT NULL CHECK (kind IN ('release', 'recycle', 'move')),
  reason_code text NOT NULL CHECK (length(reason_code) BETWEEN 1 AND 64),
  note text CHECK (length(note) <= 2000),
  returned_at timestamptz NOT NULL DEFAULT now(),
  actor_id uuid,
  PRIMARY KEY (tenant_id, sequence),
  FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id)
);
CREATE INDEX pool_returns_by_record ON pool_returns (tenant_id, record_type, record_id, user_id, returned_at DESC);

ALTER TABLE pools ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pools TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON pools TO crm_app;

ALTER TABLE pool_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pool_members TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON pool_members TO crm_app;

ALTER TABLE pool_returns ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pool_returns TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT ON pool_returns TO crm_app;

-- Tenant settings are not readable by crm_app (tenants has no row security); these definer
-- functions read and write the hold limits of the current request's tenant only.
CREATE FUNCTION crm_hold_limits(p_tenant uuid)
RETURNS TABLE (lead_hold_limit integer, account_hold_limit integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT lead_hold_limit, account_hold_limit FROM tenants WHERE id = p_tenant AND id = crm_current_tenant() $$;
REVOKE ALL ON FUNCTION crm_hold_limits(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_hold_limits(uuid) TO crm_app;

CREATE FUNCTION crm_set_hold_limits(p_tenant uuid, p_lead integer, p_account integer)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  UPDATE tenants SET lead_hold_limit = p_lead, account_hold_limit = p_account, version = version + 1, updated_at = now()
  WHERE id = p_tenant AND id = crm_current_tenant()
$$;
REVOKE ALL ON FUNCTION crm_set_hold_limits(uuid, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_set_hold_limits(uuid, integer, integer) TO crm_app;

-- The recycling job's work list across tenants: pools with a recycling rule.
CREATE FUNCTION crm_recycling_pools()
RETURNS TABLE (tenant_id uuid, pool_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  SELECT tenant_id, id FROM pools
  WHERE archived_at IS NULL AND (recycle_after_days IS NOT NULL OR recycle_no_progress_days IS NOT NULL)
  ORDER BY tenant_id, id
$$;
REVOKE ALL ON FUNCTION crm_recycling_pools() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_recycling_pools() TO crm_app;
