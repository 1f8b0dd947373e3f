-- The financial panel reads what it needs from indexes: each invoice's paid_on (the day of the last
-- payment that brought its balance to zero; NULL while it owes, or when credit notes settled it), and
-- the collectible invoices' balances, disputes and issue dates beside their due dates (BENCHMARKS.md:
-- "Billing"). paid_on is kept by a trigger whenever what the balance is made of changes.

ALTER TABLE invoices ADD COLUMN paid_on date;

CREATE FUNCTION crm_invoice_paid_on() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NEW.amount_paid > 0 AND NEW.total - NEW.amount_paid - NEW.amount_credited + NEW.amount_refunded <= 0 THEN
    NEW.paid_on := (
      SELECT max(p.received_on) FROM payment_allocations a
      JOIN payments p ON p.tenant_id = a.tenant_id AND p.id = a.payment_id
      WHERE a.tenant_id = NEW.tenant_id AND a.invoice_id = NEW.id);
  ELSE
    NEW.paid_on := NULL;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER invoices_paid_on BEFORE INSERT OR UPDATE OF total, amount_paid, amount_credited, amount_refunded ON invoices
  FOR EACH ROW EXECUTE FUNCTION crm_invoice_paid_on();

UPDATE invoices i SET paid_on = (
  SELECT max(p.received_on) FROM payment_allocations a JOIN payments p ON p.tenant_id = a.tenant_id AND p.id = a.payment_id
  WHERE a.tenant_id = i.tenant_id AND a.invoice_id = i.id)
WHERE i.amount_paid > 0 AND i.balance <= 0;

CREATE INDEX invoices_paid_by_account ON invoices (tenant_id, account_id, paid_on) INCLUDE (issue_date, currency)
  WHERE paid_on IS NOT NULL;

DROP INDEX invoices_collectible_by_account;
CREATE INDEX invoices_collectible_by_account ON invoices (tenant_id, account_id, currency, due_date)
  INCLUDE (balance, amount_disputed, issue_date)
  WHERE state IN ('open', 'uncollectible') AND balance > 0;
