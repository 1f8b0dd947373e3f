-- A search for a whole email address looks it up exactly first (docs/search.md): the leads' and
-- contacts' `email_addresses` GIN indexes answer in a fraction of a millisecond, where the trigram
-- index intersects the long posting lists of the trigrams every address shares ("mai", "exa", "com").
-- A SECURITY DEFINER function for the reason crm_search_matches is one (0068): `@>` is not leakproof,
-- so under row-level security crm_app's query could not use the index.
CREATE FUNCTION crm_search_email_matches(p_table text, p_address text)
RETURNS TABLE (match_id uuid, match_text text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
  IF p_table NOT IN ('leads', 'contacts') THEN
    RAISE EXCEPTION 'crm_search_email_matches: % has no email addresses', p_table;
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT id, search_text FROM %I WHERE tenant_id = crm_current_tenant() AND archived_at IS NULL '
    'AND email_addresses @> ARRAY[$1]', p_table) USING p_address;
END
$$;
REVOKE ALL ON FUNCTION crm_search_email_matches(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_search_email_matches(text, text) TO crm_app;
