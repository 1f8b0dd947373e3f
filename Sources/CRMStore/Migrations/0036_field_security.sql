-- Field-level security (docs/field-security.md): per tenant, role and record type, the fields a role
-- may only read or may not see at all. A field with no row is editable; admins are never restricted.
CREATE TABLE field_security (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  role text NOT NULL CHECK (role IN ('manager', 'sales_rep', 'service_agent', 'integration')),
  record_type text NOT NULL,
  field text NOT NULL CHECK (length(field) BETWEEN 1 AND 100),
  access text NOT NULL CHECK (access IN ('read_only', 'hidden')),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid NOT NULL,
  PRIMARY KEY (tenant_id, role, record_type, field)
);
ALTER TABLE field_security ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON field_security TO crm_app USING (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON field_security TO crm_app;
