-- crm_search_email_matches (0069) let the planner use the tenant as an index key: on a million
-- contacts it chose to read the whole tenant (the tenant_id key of the `(tenant_id, email_addresses)`
-- GIN, or a tenant btree) and filter the address — 0.6–1.4 s (BENCHMARKS.md). The tenant is now
-- compared as text, which no index serves, so the address's own posting list (a row or two) drives
-- the lookup and the tenant is checked on what it returns.
CREATE OR REPLACE FUNCTION crm_search_email_matches(p_table text, p_address text)
RETURNS TABLE (match_id uuid, match_text text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
  IF p_table NOT IN ('leads', 'contacts') THEN
    RAISE EXCEPTION 'crm_search_email_matches: % has no email addresses', p_table;
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT id, search_text FROM %I WHERE email_addresses @> ARRAY[$1] AND archived_at IS NULL '
    'AND tenant_id::text = crm_current_tenant()::text', p_table) USING p_address;
END
$$;
