-- List filters by tag, email, phone and name or company prefix read the caller's whole tenant:
-- crmd queries as crm_app under row-level security, and PostgreSQL applies the tenant policy before
-- any condition that is not leakproof — `@>` on arrays, LIKE and lower() are not — so none of those
-- filters could use its index (ListContacts by email on a tenant of 2,000,000 contacts: 8.1 s, a walk
-- of the whole primary key; by name prefix 1.1 s, a parallel sequential scan). crm_filter_ids finds the
-- ids a filter holds as the owner, in crm_current_tenant() only, where the indexes apply; the list
-- names them as `id = ANY(ARRAY(SELECT crm_filter_ids(…)))`, a primary-key lookup under the caller's
-- row-level security and visibility as before. It returns ids, never a record.
--
-- Filters: 'tag' (the tags GIN), 'email' and 'phone' (the normalized address and number arrays),
-- 'name_prefix' (contacts: first or last name; accounts and opportunities: the name) and
-- 'company_prefix' (leads), whose value is a LIKE pattern of the folded prefix, escaped, ending in %.
CREATE FUNCTION crm_filter_ids(p_table text, p_filter text, p_value text)
RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp ROWS 100
AS $$
DECLARE
  v_tenant uuid := crm_current_tenant();
  v_where text;
BEGIN
  IF v_tenant IS NULL THEN
    RETURN;
  END IF;
  IF p_table NOT IN ('leads', 'contacts', 'accounts', 'opportunities', 'tickets') THEN
    RAISE EXCEPTION 'crm_filter_ids: % has no such filters', p_table;
  END IF;
  -- The array filters compare the tenant as text, so no index keys on it: the value's posting list
  -- (a row or a few) drives the read, not the tenant's (see 0070). The prefixes need the tenant as
  -- the leading key of their btrees.
  v_where := CASE
    WHEN p_filter = 'tag' THEN
      format('tenant_id::text = %L AND tags @> ARRAY[%L]::text[]', v_tenant, p_value)
    WHEN p_filter = 'email' AND p_table IN ('leads', 'contacts') THEN
      format('tenant_id::text = %L AND email_addresses @> ARRAY[%L]::text[]', v_tenant, p_value)
    WHEN p_filter = 'phone' AND p_table IN ('leads', 'contacts') THEN
      format('tenant_id::text = %L AND phone_numbers @> ARRAY[%L]::text[]', v_tenant, p_value)
    WHEN p_filter = 'name_prefix' AND p_table = 'contacts' THEN
      format('tenant_id = %L::uuid AND (lower(first_name) COLLATE "C" LIKE %L ESCAPE ''\'' '
        'OR lower(last_name) COLLATE "C" LIKE %L ESCAPE ''\'')', v_tenant, p_value, p_value)
    WHEN p_filter = 'name_prefix' AND p_table IN ('accounts', 'opportunities') THEN
      format('tenant_id = %L::uuid AND lower(name) COLLATE "C" LIKE %L ESCAPE ''\''', v_tenant, p_value)
    WHEN p_filter = 'company_prefix' AND p_table = 'leads' THEN
      format('tenant_id = %L::uuid AND lower(company) COLLATE "C" LIKE %L ESCAPE ''\''', v_tenant, p_value)
  END;
  IF v_where IS NULL THEN
    RAISE EXCEPTION 'crm_filter_ids: % has no % filter', p_table, p_filter;
  END IF;
  RETURN QUERY EXECUTE format('SELECT id FROM %I WHERE %s', p_table, v_where);
END
$$;
REVOKE ALL ON FUNCTION crm_filter_ids(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_filter_ids(text, text, text) TO crm_app;
