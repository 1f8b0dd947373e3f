-- Statistics for tables an import makes grow. Every backend caches its plans, among them the per-row
-- foreign-key checks, and one planned while the referenced table was (nearly) empty may scan the wrong
-- (tenant_id, …) index until the table's statistics change — until autovacuum next analyzes it,
-- minutes into a bulk load (BENCHMARKS.md "Billing import": 4,909 lines/s with such a plan, 17,917
-- after one ANALYZE). Imports call this as their tables grow; it analyzes, as the tables' owner, each
-- allow-listed table whose live rows outgrew its statistics (more than twice, and at least 1,000),
-- and returns the ones it analyzed.
CREATE FUNCTION crm_analyze_if_stale(tables text[]) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
  t text;
  analyzed text[] := '{}';
BEGIN
  FOREACH t IN ARRAY tables LOOP
    CONTINUE WHEN NOT t = ANY (ARRAY['leads', 'contacts', 'accounts', 'invoices', 'invoice_lines', 'payments',
                                     'payment_allocations', 'change_log', 'import_rows']);
    IF EXISTS (
      SELECT 1 FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
      WHERE c.oid = to_regclass('public.' || t) AND s.n_live_tup >= 1000 AND s.n_live_tup > 2 * greatest(c.reltuples, 0)
    ) THEN
      EXECUTE format('ANALYZE public.%I', t);
      analyzed := analyzed || t;
    END IF;
  END LOOP;
  RETURN analyzed;
END
$$;
REVOKE ALL ON FUNCTION crm_analyze_if_stale(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_analyze_if_stale(text[]) TO crm_app;
