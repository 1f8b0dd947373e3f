-- Match keys on accounts and contacts, like the ones leads carry (0002), for duplicate detection
-- across leads, contacts and accounts. The store computes them on every write (CRMCore.MatchKeys);
-- rows written before this migration get keys on their next write.

ALTER TABLE accounts ADD COLUMN company_key text;
CREATE INDEX accounts_company_key_trgm ON accounts USING gin (company_key gin_trgm_ops);

ALTER TABLE contacts ADD COLUMN email_keys text[] NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD COLUMN person_key text;
UPDATE contacts SET email_keys = email_addresses;
CREATE INDEX contacts_by_email_key ON contacts USING gin (email_keys);
CREATE INDEX contacts_person_key_trgm ON contacts USING gin (person_key gin_trgm_ops);
CREATE INDEX contacts_by_phone ON contacts USING gin (phone_numbers);
