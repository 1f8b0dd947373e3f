-- Match-key indexes that lead with tenant_id (btree_gin), so FindDuplicates stays an index lookup in
-- a large tenant: with single-column GIN indexes the planner can prefer scanning the whole tenant
-- through its btree and filtering.

CREATE EXTENSION IF NOT EXISTS btree_gin;

DROP INDEX leads_by_email_key;
DROP INDEX leads_by_email;
DROP INDEX leads_by_phone;
DROP INDEX leads_company_key_trgm;
DROP INDEX leads_person_key_trgm;
CREATE INDEX leads_by_email_key ON leads USING gin (tenant_id, email_keys);
CREATE INDEX leads_by_email ON leads USING gin (tenant_id, email_addresses);
CREATE INDEX leads_by_phone ON leads USING gin (tenant_id, phone_numbers);
CREATE INDEX leads_company_key_trgm ON leads USING gin (tenant_id, company_key gin_trgm_ops);
CREATE INDEX leads_person_key_trgm ON leads USING gin (tenant_id, person_key gin_trgm_ops);
CREATE INDEX leads_by_domain ON leads (tenant_id, domain) WHERE domain IS NOT NULL;

DROP INDEX contacts_by_email_key;
DROP INDEX contacts_by_email;
DROP INDEX contacts_by_phone;
DROP INDEX contacts_person_key_trgm;
CREATE INDEX contacts_by_email_key ON contacts USING gin (tenant_id, email_keys);
CREATE INDEX contacts_by_email ON contacts USING gin (tenant_id, email_addresses);
CREATE INDEX contacts_by_phone ON contacts USING gin (tenant_id, phone_numbers);
CREATE INDEX contacts_person_key_trgm ON contacts USING gin (tenant_id, person_key gin_trgm_ops);

DROP INDEX accounts_company_key_trgm;
CREATE INDEX accounts_company_key_trgm ON accounts USING gin (tenant_id, company_key gin_trgm_ops);
CREATE INDEX accounts_by_phone ON accounts (tenant_id, phone) WHERE phone IS NOT NULL;
