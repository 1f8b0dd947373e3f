-- Candidate duplicates of one record (DuplicateService.FindDuplicates and the duplicate check on every
-- create, capture and merge): one index lookup per key, united, at most 200 per key, in the current
-- tenant. A definer function for the same reason as above: as crm_app, `email_keys && …`, `phone_numbers
-- && …` and `company_key % …` were filters on a scan of the whole tenant (58 ms and 174 ms on 110k
-- leads), not GIN lookups. The caller scores the candidates and applies visibility.
CREATE FUNCTION crm_match_candidates(
  p_table text, p_email_column text, p_emails text[], p_phones text[], p_domain text, p_company text, p_person text)
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
  IF cardinality(parts) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE array_to_string(parts, ' UNION ')
    USING crm_current_tenant(), p_emails, p_phones, p_domain, p_company, p_person;
END
$$;
REVOKE ALL ON FUNCTION crm_match_candidates(text, text, text[], text[], text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_match_candidates(text, text, text[], text[], text, text, text) TO crm_app;
