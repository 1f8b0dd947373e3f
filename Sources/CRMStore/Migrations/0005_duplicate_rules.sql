-- Per-tenant duplicate rules: what creating, capturing or importing a record that looks like existing
-- ones does (allow, warn or block), which match keys count, where to look and from which score. A
-- record type without a row follows CRMCore.DuplicateRule.standard (warn from score 0.8).

CREATE TABLE duplicate_rules (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  record_type text NOT NULL CHECK (record_type IN ('lead', 'contact', 'account')),
  action text NOT NULL CHECK (action IN ('allow', 'warn', 'block')),
  match_keys text[] NOT NULL
    CHECK (match_keys <@ ARRAY['email', 'phone', 'domain', 'company_name', 'person_name']::text[]),
  match_record_types text[] NOT NULL
    CHECK (cardinality(match_record_types) > 0 AND match_record_types <@ ARRAY['lead', 'contact', 'account']::text[]),
  min_score double precision NOT NULL CHECK (min_score >= 0 AND min_score <= 1),
  ignore_plus_tags boolean NOT NULL DEFAULT false,
  version bigint NOT NULL DEFAULT 1,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid,
  PRIMARY KEY (tenant_id, record_type)
);

ALTER TABLE duplicate_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON duplicate_rules TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON duplicate_rules TO crm_app;
