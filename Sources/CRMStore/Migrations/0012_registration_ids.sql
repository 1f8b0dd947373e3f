-- Registration ids (unified social credit code, VAT id, company number) on leads and accounts, stored
-- normalized (upper case, letters and digits only) and compared exactly by duplicate detection.

ALTER TABLE leads ADD COLUMN registration_id text CHECK (registration_id ~ '^[[:upper:][:digit:]]{1,64}$');
ALTER TABLE accounts ADD COLUMN registration_id text CHECK (registration_id ~ '^[[:upper:][:digit:]]{1,64}$');
CREATE INDEX leads_by_registration_id ON leads (tenant_id, registration_id) WHERE registration_id IS NOT NULL;
CREATE INDEX accounts_by_registration_id ON accounts (tenant_id, registration_id) WHERE registration_id IS NOT NULL;

-- Duplicate rules may count it.
ALTER TABLE duplicate_rules DROP CONSTRAINT duplicate_rules_match_keys_check;
ALTER TABLE duplicate_rules ADD CONSTRAINT duplicate_rules_match_keys_check
  CHECK (match_keys <@ ARRAY['email', 'phone', 'domain', 'company_name', 'person_name', 'registration_id']::text[]);

-- crm_match_candidates (0011) learns the registration id.
DROP FUNCTION crm_match_candidates(text, text, text[], text[], text, text, text);
CREATE FUNCTION crm_match_candidates(
  p_table text, p_email_column text, p_emails text[], p_phones text[], p_domain text, p_company text, p_person text,
  p_registration text)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  parts text[] := '{}';
BEGIN
  IF p_table NOT IN ('leads', 'contacts', 'accounts') THEN
    RAISE EXCEPTION 'no match lookup for %', p_table;
  END IF;
  IF p_email_column IS NOT NULL AND p_email_column NOT IN ('email_keys', 'email_addresses') THEN
    RAISE EXCEPTION 'no match lookup for %.%', p_table, p_email_column;
  END IF;
  IF p_email_column IS NOT NULL AND p_table <> 'accounts' AND cardinality(p_emails) > 0 THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND %I && $2 LIMIT 200)', p_table, p_email_column);
  END IF;
  IF cardinality(p_phones) > 0 THEN
    parts := parts || CASE WHEN p_table = 'accounts'
      THEN '(SELECT id FROM accounts WHERE tenant_id = $1 AND phone = ANY($3) LIMIT 200)'
      ELSE format('(SELECT id FROM %I WHERE tenant_id = $1 AND phone_numbers && $3 LIMIT 200)', p_table) END;
  END IF;
  IF p_domain IS NOT NULL AND p_table <> 'contacts' THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND domain = $4 LIMIT 200)', p_table);
  END IF;
  IF p_company IS NOT NULL AND p_table <> 'contacts' THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND company_key %% $5 LIMIT 200)', p_table);
  END IF;
  IF p_person IS NOT NULL AND p_table <> 'accounts' THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND person_key %% $6 LIMIT 200)', p_table);
  END IF;
  IF p_registration IS NOT NULL AND p_table <> 'contacts' THEN
    parts := parts || format('(SELECT id FROM %I WHERE tenant_id = $1 AND registration_id = $7 LIMIT 200)', p_table);
  END IF;
  IF cardinality(parts) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE array_to_string(parts, ' UNION ')
    USING crm_current_tenant(), p_emails, p_phones, p_domain, p_company, p_person, p_registration;
END
$$;
REVOKE ALL ON FUNCTION crm_match_candidates(text, text, text[], text[], text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_match_candidates(text, text, text[], text[], text, text, text, text) TO crm_app;
