-- crm_filter_ids (0073) gains 'contact' for opportunities: the deals naming a contact (as primary or
-- in a role), by the `contact_ids` GIN. A contact merge relinked deals with `contact_ids && losers`,
-- which under row-level security filtered a scan of every deal in the tenant (`&&` is not leakproof).

CREATE OR REPLACE FUNCTION crm_filter_ids(p_table text, p_filter text, p_value text)
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
    WHEN p_filter = 'contact' AND p_table = 'opportunities' THEN
      format('tenant_id::text = %L AND contact_ids @> ARRAY[%L::uuid]', v_tenant, p_value)
    WHEN p_filter = 'company_prefix' AND p_table = 'leads' THEN
      format('tenant_id = %L::uuid AND lower(company) COLLATE "C" LIKE %L ESCAPE ''\''', v_tenant, p_value)
  END;
  IF v_where IS NULL THEN
    RAISE EXCEPTION 'crm_filter_ids: % has no % filter', p_table, p_filter;
  END IF;
  RETURN QUERY EXECUTE format('SELECT id FROM %I WHERE %s', p_table, v_where);
END
$$;
