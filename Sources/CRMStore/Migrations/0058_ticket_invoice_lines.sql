-- The invoices and invoice lines a ticket concerns (`INVOICE_ID:LINE`, line 0 the whole invoice): a
-- dispute's ticket names the lines contested. No foreign key: an invoice's lines are replaced by each
-- push; a line a later push drops stays named.
ALTER TABLE tickets ADD COLUMN invoice_lines text[] NOT NULL DEFAULT '{}' CHECK (cardinality(invoice_lines) <= 50);
