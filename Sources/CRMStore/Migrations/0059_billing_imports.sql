-- Imports of billing facts: invoices (a row per line) and payments (a row per allocation) through the
-- same stream and ledger as leads, contacts and accounts.
ALTER TABLE imports DROP CONSTRAINT imports_record_type_check;
ALTER TABLE imports ADD CONSTRAINT imports_record_type_check
  CHECK (record_type IN ('lead', 'contact', 'account', 'invoice', 'payment'));
