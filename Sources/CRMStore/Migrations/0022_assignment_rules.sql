-- Assignment rules: ordered per-tenant rules for leads and accounts, criteria on fields → a user, a
-- team by weighted round-robin, or a shared pool. The first active rule that matches fires, in the
-- transaction of the write it routes.

CREATE TABLE assignment_rules (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  record_type text NOT NULL CHECK (record_type IN ('lead', 'account')),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- Rules are tried in ascending position; ties by id.
  position integer NOT NULL,
  is_active boolean NOT NULL DEFAULT true,
  -- {"sources": [...], "region_codes": [...], "industries": [...], "company_size_min": n,
  --  "company_size_max": n, "tags": [...]}; an absent criterion matches everything.
  criteria jsonb NOT NULL DEFAULT '{}'::jsonb,
  action text NOT NULL CHECK (action IN ('user', 'team', 'pool')),
  user_id uuid,
  pool_id uuid,
  -- Team round-robin: members at this many open records are skipped (NULL: no cap).
  open_record_cap integer CHECK (open_record_cap >= 1),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id),
  CHECK ((action = 'user') = (user_id IS NOT NULL)),
  CHECK ((action = 'pool') = (pool_id IS NOT NULL))
);
CREATE INDEX assignment_rules_in_order ON assignment_rules (tenant_id, record_type, position, id) WHERE archived_at IS NULL;

-- The members a team rule rotates through, with their weights and how many records the rule has
-- given each: the next pick is the eligible member with the fewest assignments per unit of weight.
CREATE TABLE assignment_rule_members (
  tenant_id uuid NOT NULL,
  rule_id uuid NOT NULL,
  user_id uuid NOT NULL,
  weight integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100),
  assigned bigint NOT NULL DEFAULT 0,
  position integer NOT NULL,
  PRIMARY KEY (tenant_id, rule_id, user_id),
  FOREIGN KEY (tenant_id, rule_id) REFERENCES assignment_rules (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

ALTER TABLE users ADD COLUMN out_of_office_until timestamptz;

ALTER TABLE assignment_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assignment_rules TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON assignment_rules TO crm_app;

ALTER TABLE assignment_rule_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assignment_rule_members TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON assignment_rule_members TO crm_app;
