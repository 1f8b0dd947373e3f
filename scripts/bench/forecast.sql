-- pgbench script: the SQL crmd runs for one GetForecast (scripts/bench-forecast.sh: the VP's
-- forecast of one quarter), in the same two round trips, as crm_app (PGOPTIONS). First, pipelined:
-- the tenant setup, the fiscal settings, the users and the teams (the hierarchy is computed from
-- them in Swift); then, pipelined: the tenant setup, the sums per owner and category, the
-- adjustments in force and the quotas. :owners, :period_start and :period_end are filled in by the
-- script (the VP and everyone below).
\startpipeline
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT fiscal_year_start_month, forecast_period FROM tenants WHERE id = :tenant;
SELECT id, display_name, team_id FROM users WHERE tenant_id = :tenant;
SELECT id, name, parent_team_id, manager_id, created_at FROM teams WHERE tenant_id = :tenant;
\endpipeline
\startpipeline
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT owner_id, forecast_category, count(*) AS deals,
  sum(((amount_units::numeric * 1000000000 + coalesce(amount_nanos, 0)) / 1000000000))::numeric(38, 9)::text AS amount,
  (sum(round(((amount_units::numeric * 1000000000 + coalesce(amount_nanos, 0)) / 1000000000) * 1000000000 * probability / 100))
    / 1000000000)::numeric(38, 9)::text AS weighted,
  NULL::uuid AS snapshot_id FROM opportunities WHERE tenant_id = :tenant AND archived_at IS NULL AND amount_currency = 'USD'
  AND close_date BETWEEN :period_start AND :period_end AND forecast_category <> 'omitted'
  AND owner_id IN (SELECT unnest(:owners::uuid[]))
GROUP BY 1, 2, snapshot_id;
SELECT subject_id, adjuster_id, column_name, amount::text AS amount, created_at, superseded_at FROM forecast_adjustments
WHERE tenant_id = :tenant AND period_kind = 'quarter' AND period_start = :period_start
  AND currency = 'USD' AND (false OR (superseded_at IS NULL AND amount IS NOT NULL));
SELECT user_id, period_kind, amount::text AS amount FROM quotas
WHERE tenant_id = :tenant AND currency = 'USD' AND period_start >= :period_start AND period_end <= :period_end;
\endpipeline
