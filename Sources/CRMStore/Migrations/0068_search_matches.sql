-- The search indexes (0065) without their leading tenant_id column: a GIN index has no order, so a
-- search read tenant_id's posting list — every row of the tenant, a million for a large one — and
-- intersected it with the query's trigram lists on every call (hundreds of milliseconds,
-- BENCHMARKS.md). The trigram lists alone are short for any selective query; the tenant is checked on
-- the few rows they return (and row-level security checks it again).
DROP INDEX leads_search, contacts_search, accounts_search, opportunities_search, tickets_search;

CREATE INDEX leads_search ON leads USING gin (search_text gin_trgm_ops) WHERE archived_at IS NULL;
CREATE INDEX contacts_search ON contacts USING gin (search_text gin_trgm_ops) WHERE archived_at IS NULL;
CREATE INDEX accounts_search ON accounts USING gin (search_text gin_trgm_ops) WHERE archived_at IS NULL;
CREATE INDEX opportunities_search ON opportunities USING gin (search_text gin_trgm_ops) WHERE archived_at IS NULL;
CREATE INDEX tickets_search ON tickets USING gin (search_text gin_trgm_ops) WHERE archived_at IS NULL;

-- The trigram indexes were never used by crm_app: row-level security must apply the tenant policy
-- before any condition that is not leakproof, and LIKE and `<%` are not — so PostgreSQL would not
-- make the query's text an index condition, and scanned the tenant instead (a parallel sequential
-- scan, or a bitmap of a whole tenant from another tenant-keyed index). This function finds the
-- matching rows of the caller's own tenant (crm_current_tenant(), never a parameter) as the owner,
-- where the index applies; the search joins each match back to its table as crm_app, so row-level
-- security and the caller's visibility still decide what is returned. The statement is planned with
-- the pattern's value (EXECUTE … USING), so the trigrams reach the index.
CREATE FUNCTION crm_search_matches(p_table text, p_like text, p_similar text)
RETURNS TABLE (match_id uuid, match_text text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
  IF p_table NOT IN ('leads', 'contacts', 'accounts', 'opportunities', 'tickets') THEN
    RAISE EXCEPTION 'crm_search_matches: % is not searchable', p_table;
  END IF;
  IF p_similar IS NULL THEN
    RETURN QUERY EXECUTE format(
      'SELECT id, search_text FROM %I WHERE tenant_id = crm_current_tenant() AND archived_at IS NULL '
      'AND search_text LIKE $1', p_table) USING p_like;
  ELSE
    RETURN QUERY EXECUTE format(
      'SELECT id, search_text FROM %I WHERE tenant_id = crm_current_tenant() AND archived_at IS NULL '
      'AND $1 <%% search_text', p_table) USING p_similar;
  END IF;
END
$$;
REVOKE ALL ON FUNCTION crm_search_matches(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_search_matches(text, text, text) TO crm_app;
