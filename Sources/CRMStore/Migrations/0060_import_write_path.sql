-- Foreign keys that guarded nothing the code does not, on the rows a bulk import writes by the million.
--
-- An invoice's lines are written only by BillingStore, in the transaction that writes (and locks) the
-- invoice, and invoices are never deleted; an import's ledger rows only by ImportStore, under the
-- import's row lock, and imports are never deleted. Each key cost a referential check per row. Worse,
-- as migration 0032 found for tickets, PostgreSQL caches each backend's plan for that check from its
-- first use: a crmd started on a tenant without invoices planned `SELECT 1 FROM invoices WHERE
-- tenant_id = $1 AND id = $2 FOR KEY SHARE` as a scan of another (tenant_id, …) index filtered on id,
-- so every imported line scanned all of the tenant's invoices — half of a 200,000-line import's time
-- (scripts/bench-billing-import.sh: 27.4 s with the key, 14.0 s without).
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_tenant_id_invoice_id_fkey;
ALTER TABLE import_rows DROP CONSTRAINT import_rows_tenant_id_import_id_fkey;
