-- pgbench script: the SQL crmd runs for one GetAccount (after authentication, which crmd caches),
-- as crmd sends it: the tenant and statement timeout, then the row, pipelined in one round trip and
-- one implicit transaction, under the crm_app role (PGOPTIONS).
\set n random(1, :accounts)
\startpipeline
SELECT set_config('crm.tenant_id', :tenant, true), set_config('statement_timeout', '30000', true);
SELECT id, owner_id, name, website, domain, industry, account_type, tier, employee_count, annual_revenue_currency,
       annual_revenue_units, annual_revenue_nanos, phone, billing_address, shipping_address, parent_id, description,
       external_id, tags, version, created_at, updated_at, created_by, updated_by, archived_at
FROM accounts
WHERE tenant_id = :tenant AND id = ('00000000-0000-7000-8000-' || lpad(to_hex(:n::int), 12, '0'))::uuid;
\endpipeline
