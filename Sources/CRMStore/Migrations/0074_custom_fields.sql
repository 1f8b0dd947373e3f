-- Custom fields' definitions (docs/custom-fields.md): a tenant's own fields on leads, contacts,
-- accounts, opportunities, tickets and invoices. An api_name is unique per tenant and record type
-- among live and archived fields alike, so a name never comes to mean other data. The definition's
-- type-specific parts (max length, scale, options, reference type) and default live in `config`,
-- validated by crmd (CustomFieldDefinition.validate).
CREATE TABLE custom_fields (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  record_type text NOT NULL CHECK (record_type IN ('lead', 'contact', 'account', 'opportunity', 'ticket', 'invoice')),
  api_name text NOT NULL CHECK (api_name ~ '^[a-z][a-z0-9_]{1,62}$'),
  label text NOT NULL CHECK (length(label) BETWEEN 1 AND 255),
  type text NOT NULL CHECK (type IN ('text', 'long_text', 'integer', 'decimal', 'money', 'boolean', 'date', 'timestamp',
    'single_choice', 'multi_choice', 'email', 'phone', 'url', 'reference')),
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  required boolean NOT NULL DEFAULT false,
  is_unique boolean NOT NULL DEFAULT false,
  filterable boolean NOT NULL DEFAULT false,
  help_text text CHECK (length(help_text) <= 1000),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  archived_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, record_type, api_name)
);
CREATE INDEX custom_fields_by_type ON custom_fields (tenant_id, record_type, created_at, id);

ALTER TABLE custom_fields ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON custom_fields TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON custom_fields TO crm_app;
