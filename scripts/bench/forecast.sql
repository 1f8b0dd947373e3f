-- pgbench script: the SQL crmd runs for one GetForecast (scripts/bench-forecast.sh: the VP's
-- forecast of one quarter), in the same two round trips, as crm_app (PGOPTIONS). First, pipelined:
-- the tenant setup, the fiscal settings, the users and the teams (the hierarchy is computed from
-- them in Swift); then, pipelined: the tenant setup, the sums per owner and category, the
-- adjustments in force and the quotas. :period_start and :period_end are filled in by the script; a
-- VP's 1,021 owners are more than crmd filters in SQL (it drops other owners' sums in Swift).
\startpipeline
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT fiscal_year_start_month, forecast_period FROM tenants WHERE id = :tenant;
SELECT id, display_name, team_id FROM users WHERE tenant_id = :tenant;
SELECT id, name, parent_team_id, manager_id, created_at FROM teams WHERE tenant_id = :tenant;
\endpipeline
\startpipeline
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT owner_id, forecast_category, count(*) AS deals,
  sum(amount_units) * 1000000000 + sum(coalesce(amount_nanos, 0)) AS amount,
  (coalesce(sum(amount_units * probability) FILTER (WHERE abs(amount_units) < 10000000000000000), 0)
    + coalesce(sum(amount_units::numeric * probability) FILTER (WHERE abs(amount_units) >= 10000000000000000), 0))
    * 10000000
    + sum((coalesce(amount_nanos, 0)::bigint * probability + CASE WHEN amount_nanos < 0 THEN -50 ELSE 50 END) / 100)
    AS weighted,
  NULL::uuid AS snapshot_id
  FROM opportunities WHERE tenant_id = :tenant AND archived_at IS NULL AND amount_currency = 'USD'
  AND close_date BETWEEN :period_start AND :period_end AND forecast_category <> 'omitted'
GROUP BY owner_id, forecast_category, snapshot_id;
SELECT subject_id, adjuster_id, column_name, amount::text AS amount, created_at, superseded_at FROM forecast_adjustments
WHERE tenant_id = :tenant AND period_kind = 'quarter' AND period_start = :period_start
  AND currency = 'USD' AND (false OR (superseded_at IS NULL AND amount IS NOT NULL));
SELECT user_id, period_kind, amount::text AS amount FROM quotas
WHERE tenant_id = :tenant AND currency = 'USD' AND period_start >= :period_start AND period_end <= :period_end;
\endpipeline
