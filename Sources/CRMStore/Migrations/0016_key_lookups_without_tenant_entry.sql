-- crm_exact_key_matches (0010) without the tenant in the GIN index condition.
--
-- The array-key GIN indexes lead with tenant_id (btree_gin), and a lookup `tenant_id = $2 AND
-- column @> ARRAY[key]` made GIN intersect the key's short posting list with the tenant's, which
-- holds every row of the tenant: each lookup decoded a page of that list, and in a 1,000,000-lead
-- tenant the 1,000 lookups of an import batch took 240 ms (14 ms without it), the largest single cost
-- of a batch in `perf` (ginPostingListDecodeAllSegments). The lookup now asks the index for the key
-- alone (OFFSET 0 keeps the planner from folding the tenant condition back into the index scan) and
-- checks the tenant on the few rows it returns: still never another tenant's rows. Without the tenant
-- condition the planner's estimate for 1,000 lookups crosses jit_above_cost, and compiling the query
-- with LLVM on every batch cost more than the lookups themselves: JIT is off for this function.
CREATE OR REPLACE FUNCTION crm_exact_key_matches(p_table text, p_column text, p_keys text[])
RETURNS TABLE (id uuid, k text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off
AS $$
BEGIN
  IF NOT ((p_table, p_column) IN (
    ('leads', 'email_addresses'), ('leads', 'phone_numbers'), ('leads', 'email_keys'),
    ('contacts', 'email_addresses'), ('contacts', 'phone_numbers'), ('contacts', 'email_keys'))) THEN
    RAISE EXCEPTION 'no key lookup for %.%', p_table, p_column;
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT r.id, e.k FROM unnest($1) AS e(k) CROSS JOIN LATERAL ('
    '  SELECT t.id FROM (SELECT id, tenant_id, archived_at FROM %I WHERE %I @> ARRAY[e.k] OFFSET 0) t'
    '  WHERE t.tenant_id = $2 AND t.archived_at IS NULL) r',
    p_table, p_column) USING p_keys, crm_current_tenant();
END
$$;
