-- Search finds invoices by number (docs/search.md): an invoice whose number is the query, or starts
-- with it, in any case. crm_search_top gains a 'number' mode, for the invoices table only: p_terms =
-- [["inv-20"]] (LIKE-escaped), p_query the number as typed; score 3 for the whole number, else 2 plus
-- 1 / (2 + length). The index is read as the owner for the reason of 0071 (LIKE is not leakproof);
-- the search joins the matches back as crm_app under billing visibility (the account's owner and
-- their managers, its collector, admins and integrations), never by owner here.
CREATE INDEX invoices_by_folded_number ON invoices (tenant_id, lower(number) text_pattern_ops);

CREATE OR REPLACE FUNCTION crm_search_top(
  p_table text, p_mode text, p_terms jsonb, p_query text, p_owners uuid[], p_pools uuid[], p_after_score float8,
  p_after_id uuid, p_limit integer)
RETURNS TABLE (match_id uuid, match_score float8, match_capped boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp ROWS 20
AS $$
DECLARE
  v_score text;
  v_where text;
  v_text text;
  v_tenant uuid := crm_current_tenant();
  v_in_tenant text;
  v_visible text := '';
  v_owner text := CASE WHEN p_table = 'tickets' THEN 'assignee_id' ELSE 'owner_id' END;
BEGIN
  IF v_tenant IS NULL THEN
    RETURN;
  END IF;
  IF p_table NOT IN ('leads', 'contacts', 'accounts', 'opportunities', 'tickets', 'invoices') THEN
    RAISE EXCEPTION 'crm_search_top: % is not searchable', p_table;
  END IF;
  IF (p_table = 'invoices') <> (p_mode = 'number') THEN
    RAISE EXCEPTION 'crm_search_top: invoices are searched by number, and only they';
  END IF;
  v_in_tenant := format('tenant_id = %L::uuid', v_tenant);
  IF p_mode = 'substring' THEN
    v_text := p_terms -> 0 ->> 0;
    v_where := format('search_text LIKE %L', '%' || v_text || '%');
    v_score := format(
      'CASE WHEN search_text LIKE %L THEN 2.0::float8 WHEN search_text LIKE %L THEN 1.5::float8 ELSE 1.0::float8 END '
      '+ 1.0::float8 / (2 + length(search_text))', v_text || '%', '% ' || v_text || '%');
  ELSIF p_mode = 'words' THEN
    SELECT string_agg('(' || (
        SELECT string_agg(format('search_text LIKE %L', '%' || alternative || '%'), ' OR ')
        FROM jsonb_array_elements_text(grp) AS alternative) || ')', ' AND ')
    INTO v_where FROM jsonb_array_elements(p_terms) AS grp;
    v_score := format('(0.99 * word_similarity(%L, search_text))::float8', p_query);
  ELSIF p_mode = 'email' THEN
    IF p_table NOT IN ('leads', 'contacts') THEN
      RETURN;
    END IF;
    -- The tenant compared as text, so no index keys on it: the address's posting list (a row or two)
    -- drives the read, not the tenant's (0070).
    v_where := format('email_addresses @> ARRAY[%L]', p_query);
    v_in_tenant := format('tenant_id::text = %L', v_tenant);
    v_score := '3::float8';
  ELSIF p_mode = 'number' THEN
    -- An invoice whose number is the query (score 3) or starts with it, in any case
    -- (invoices_by_folded_number); p_query is the number as typed, p_terms its LIKE-escaped form.
    v_where := format('lower(number) LIKE %L', lower(p_terms -> 0 ->> 0) || '%');
    v_score := format(
      'CASE WHEN lower(number) = %L THEN 3.0::float8 ELSE 2.0::float8 + 1.0::float8 / (2 + length(number)) END',
      lower(p_query));
  ELSE
    RAISE EXCEPTION 'crm_search_top: unknown mode %', p_mode;
  END IF;
  IF v_where IS NULL THEN
    RETURN;
  END IF;
  -- A caller who sees only some owners' records (p_owners, and pools for pooled types) samples only
  -- those: the conditions narrow, never widen — the search applies the caller's visibility again as
  -- crm_app on what this returns.
  IF p_owners IS NOT NULL AND p_table <> 'invoices' THEN
    v_visible := CASE WHEN p_pools IS NOT NULL AND p_table IN ('leads', 'accounts')
      THEN format(' AND (%I = ANY(%L::uuid[]) OR pool_id = ANY(%L::uuid[]))', v_owner, p_owners, p_pools)
      ELSE format(' AND %I = ANY(%L::uuid[])', v_owner, p_owners) END;
  END IF;
  -- At most 1,000 matches of a type are ranked: a word held by 25,000 contacts took 45 ms to score in
  -- full, most of it reading each candidate's row (the search text is the table's last column), and
  -- no one pages through that many (Salesforce's SOSL stops at 2,000; 2,000 here left a common surname
  -- at p99 53 ms over three types, 1,000 at 42 ms — BENCHMARKS.md). They are the first the index hands
  -- back (bitmap order: the table's physical order, older records first); match_capped says the
  -- sample was full, so the search can tell its caller to narrow the query. The tenant is a literal
  -- (crm_current_tenant() in the statement ran for each candidate row: a third of a common surname's
  -- read) and scores are float8 (numeric arithmetic was another third).
  RETURN QUERY EXECUTE format(
    'SELECT id, score, capped FROM (SELECT id, %s AS score, count(*) OVER () >= 1000 AS capped '
    'FROM (SELECT %s FROM %I WHERE %s AND %s%s AND (%s) LIMIT 1000) sample) matched '
    'WHERE $1 IS NULL OR score < $1 OR (score = $1 AND id > $2) ORDER BY score DESC, id LIMIT $3',
    v_score, CASE WHEN p_table = 'invoices' THEN 'id, number' ELSE 'id, search_text' END, p_table, v_in_tenant,
    CASE WHEN p_table = 'invoices' THEN 'true' ELSE 'archived_at IS NULL' END, v_visible, v_where)
    USING p_after_score, p_after_id, p_limit;
END
$$;
