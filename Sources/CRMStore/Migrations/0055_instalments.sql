-- Instalment plans (docs/billing.md, "Instalments"): an invoice the billing system splits into
-- scheduled instalments owes each on its own due date, and aging follows each instalment.
--
-- What an instalment still owes is derived, never written by hand: payments and credits cover the
-- earliest instalments first, so the invoice's balance is owed on the latest ones (`owed`), and its
-- collectible part — the balance less what open disputes contest — likewise (`collectible`). The
-- invoice's `collect_due` is the due date of the earliest instalment still collectible (its own due
-- date for an invoice without instalments): what overdue, dunning and the invoice lists go by.

CREATE TABLE invoice_instalments (
  tenant_id uuid NOT NULL,
  invoice_id uuid NOT NULL,
  number integer NOT NULL CHECK (number BETWEEN 1 AND 120),
  due_date date NOT NULL,
  amount numeric(28, 9) NOT NULL CHECK (amount > 0),
  owed numeric(28, 9) NOT NULL DEFAULT 0,
  collectible numeric(28, 9) NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, invoice_id, number),
  FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE,
  CHECK (owed >= 0 AND owed <= amount AND collectible >= 0 AND collectible <= owed)
);

ALTER TABLE invoices ADD COLUMN has_instalments boolean NOT NULL DEFAULT false;
ALTER TABLE invoices ADD COLUMN collect_due date;
UPDATE invoices SET collect_due = due_date;
ALTER TABLE invoices ALTER COLUMN collect_due SET NOT NULL;

-- Spreads the invoice's balance and collectible amount over its instalments, latest first, and sets
-- its collect_due.
CREATE FUNCTION crm_settle_instalments(p_tenant uuid, p_invoice uuid) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  UPDATE invoice_instalments s SET owed = x.owed, collectible = x.collectible
  FROM (
    SELECT s2.number,
      greatest(0, least(s2.amount, i.balance - coalesce(sum(s2.amount) OVER later, 0))) AS owed,
      greatest(0, least(s2.amount, i.balance - i.amount_disputed - coalesce(sum(s2.amount) OVER later, 0))) AS collectible
    FROM invoice_instalments s2
    JOIN invoices i ON i.tenant_id = s2.tenant_id AND i.id = s2.invoice_id
    WHERE s2.tenant_id = p_tenant AND s2.invoice_id = p_invoice
    WINDOW later AS (ORDER BY s2.number DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
  ) x
  WHERE s.tenant_id = p_tenant AND s.invoice_id = p_invoice AND s.number = x.number
    AND (s.owed, s.collectible) IS DISTINCT FROM (x.owed, x.collectible);
  UPDATE invoices i SET collect_due = coalesce((
      SELECT min(s.due_date) FROM invoice_instalments s
      WHERE s.tenant_id = i.tenant_id AND s.invoice_id = i.id AND s.collectible > 0), i.due_date)
  WHERE i.tenant_id = p_tenant AND i.id = p_invoice AND i.has_instalments;
END;
$$;

CREATE FUNCTION crm_invoice_instalments_settle() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM crm_settle_instalments(NEW.tenant_id, NEW.id);
  RETURN NULL;
END;
$$;

CREATE TRIGGER invoices_instalments_settle
  AFTER UPDATE OF total, amount_paid, amount_credited, amount_refunded, amount_disputed, has_instalments ON invoices
  FOR EACH ROW WHEN (NEW.has_instalments) EXECUTE FUNCTION crm_invoice_instalments_settle();

-- An invoice without instalments is due on its due date (one with them, until they are settled).
CREATE FUNCTION crm_invoice_collect_due() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NOT NEW.has_instalments OR NEW.collect_due IS NULL THEN NEW.collect_due := NEW.due_date; END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER invoices_collect_due BEFORE INSERT OR UPDATE OF due_date, has_instalments ON invoices
  FOR EACH ROW EXECUTE FUNCTION crm_invoice_collect_due();

-- The panel's and the report's reads: collectible invoices without instalments index-only as before
-- (has_instalments is included), instalment invoices by their own small index.
DROP INDEX invoices_collectible_by_account;
CREATE INDEX invoices_collectible_by_account ON invoices (tenant_id, account_id, currency, due_date)
  INCLUDE (balance, amount_disputed, issue_date, has_instalments)
  WHERE state IN ('open', 'uncollectible') AND balance > 0;
CREATE INDEX invoices_with_instalments ON invoices (tenant_id, account_id)
  WHERE has_instalments AND state IN ('open', 'uncollectible') AND balance > 0;
-- Dunning goes by what is due first.
CREATE INDEX invoices_by_collect_due ON invoices (tenant_id, collect_due, id) WHERE state IN ('open', 'uncollectible');

ALTER TABLE invoice_instalments ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_instalments TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON invoice_instalments TO crm_app;
