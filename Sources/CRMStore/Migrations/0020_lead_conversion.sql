-- Lead conversion: a converted lead points at the account, contact and (optionally) opportunity it
-- became; the opportunity points back through source_lead_id.

ALTER TABLE leads
  ADD COLUMN converted_account_id uuid,
  ADD COLUMN converted_contact_id uuid,
  ADD COLUMN converted_opportunity_id uuid,
  ADD COLUMN converted_at timestamptz,
  ADD CONSTRAINT leads_converted_account_fkey
    FOREIGN KEY (tenant_id, converted_account_id) REFERENCES accounts (tenant_id, id),
  ADD CONSTRAINT leads_converted_contact_fkey
    FOREIGN KEY (tenant_id, converted_contact_id) REFERENCES contacts (tenant_id, id),
  ADD CONSTRAINT leads_converted_opportunity_fkey
    FOREIGN KEY (tenant_id, converted_opportunity_id) REFERENCES opportunities (tenant_id, id),
  ADD CONSTRAINT leads_conversion_complete
    CHECK ((status = 'converted') = (converted_at IS NOT NULL AND converted_account_id IS NOT NULL
                                     AND converted_contact_id IS NOT NULL));
CREATE INDEX leads_by_converted_account ON leads (tenant_id, converted_account_id) WHERE converted_account_id IS NOT NULL;
CREATE INDEX leads_by_converted_contact ON leads (tenant_id, converted_contact_id) WHERE converted_contact_id IS NOT NULL;
