-- Leads: prospective customers from every channel, with the match keys duplicate detection reads.

CREATE FUNCTION crm_lead_sort_name(last_name text, first_name text, company text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lower(coalesce(last_name, '') || ' ' || coalesce(first_name, '') || ' ' || coalesce(company, '')) COLLATE "C" $$;

CREATE TABLE leads (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  -- NULL while the lead is held in a shared pool (pool_id); the operate issue builds pools.
  owner_id uuid,
  pool_id uuid,
  first_name text CHECK (length(first_name) <= 100),
  last_name text CHECK (length(last_name) <= 100),
  company text CHECK (length(company) <= 255),
  title text CHECK (length(title) <= 128),
  emails jsonb NOT NULL DEFAULT '[]'::jsonb,
  email_addresses text[] NOT NULL DEFAULT '{}',
  phones jsonb NOT NULL DEFAULT '[]'::jsonb,
  phone_numbers text[] NOT NULL DEFAULT '{}',
  website text CHECK (length(website) <= 2048),
  domain text CHECK (length(domain) <= 253),
  region_code text CHECK (region_code ~ '^[A-Z]{2}$'),
  industry text CHECK (length(industry) <= 100),
  company_size integer CHECK (company_size >= 0),
  source text NOT NULL DEFAULT 'unspecified'
    CHECK (source IN ('unspecified', 'web_form', 'email', 'phone', 'chat', 'event', 'partner', 'import', 'api')),
  source_detail text CHECK (length(source_detail) <= 255),
  campaign text CHECK (length(campaign) <= 255),
  utm jsonb,
  status text NOT NULL DEFAULT 'new'
    CHECK (status IN ('new', 'working', 'nurturing', 'qualified', 'converted', 'disqualified')),
  disqualified_reason text CHECK (length(disqualified_reason) <= 500),
  external_id text CHECK (length(external_id) <= 255),
  tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
  description text CHECK (length(description) <= 10000),
  last_activity_at timestamptz,
  -- Match keys, computed by the store on every write (CRMCore.MatchKeys).
  email_keys text[] NOT NULL DEFAULT '{}',
  company_key text,
  person_key text,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
  CHECK (owner_id IS NOT NULL OR pool_id IS NOT NULL),
  CHECK ((status = 'disqualified') = (disqualified_reason IS NOT NULL))
);
CREATE UNIQUE INDEX leads_external_id ON leads (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX leads_by_name ON leads (tenant_id, crm_lead_sort_name(last_name, first_name, company), id);
CREATE INDEX leads_by_update ON leads (tenant_id, updated_at DESC, id DESC);
CREATE INDEX leads_by_created ON leads (tenant_id, created_at);
CREATE INDEX leads_by_owner ON leads (tenant_id, owner_id);
CREATE INDEX leads_by_status ON leads (tenant_id, status);
CREATE INDEX leads_by_source ON leads (tenant_id, source);
CREATE INDEX leads_by_campaign ON leads (tenant_id, campaign) WHERE campaign IS NOT NULL;
CREATE INDEX leads_by_company ON leads (tenant_id, (lower(company) COLLATE "C"));
CREATE INDEX leads_by_email ON leads USING gin (email_addresses);
CREATE INDEX leads_by_phone ON leads USING gin (phone_numbers);
CREATE INDEX leads_by_tag ON leads USING gin (tags);
CREATE INDEX leads_by_email_key ON leads USING gin (email_keys);
CREATE INDEX leads_company_key_trgm ON leads USING gin (company_key gin_trgm_ops);
CREATE INDEX leads_person_key_trgm ON leads USING gin (person_key gin_trgm_ops);

ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON leads TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON leads TO crm_app;
