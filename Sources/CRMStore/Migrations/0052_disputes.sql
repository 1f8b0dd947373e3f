-- Disputes: a customer contests an invoice (some of its lines, or an amount). Each is worked as a
-- service ticket of type dispute, and while it is open the amount it contests is held out of what
-- the invoice counts as overdue, out of aging and out of credit hold (Odoo's "blocked" lines). States
-- follow the card networks: needs_response → under_review → won | lost | withdrawn.

CREATE TABLE invoice_disputes (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  invoice_id uuid NOT NULL,
  account_id uuid NOT NULL,
  ticket_id uuid NOT NULL,
  -- The invoice lines contested (empty: an amount, not particular lines).
  line_numbers integer[] NOT NULL DEFAULT '{}',
  currency text NOT NULL,
  amount numeric(28, 9) NOT NULL CHECK (amount > 0),
  reason text NOT NULL CHECK (reason ~ '^[a-z][a-z0-9_]{0,49}$'),
  state text NOT NULL CHECK (state IN ('needs_response', 'under_review', 'won', 'lost', 'withdrawn')),
  evidence_due date,
  -- The credit note a lost dispute issued.
  credit_note_id uuid,
  resolved_at timestamptz,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, invoice_id, currency) REFERENCES invoices (tenant_id, id, currency),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
  FOREIGN KEY (tenant_id, credit_note_id) REFERENCES credit_notes (tenant_id, id),
  CHECK ((state IN ('won', 'lost', 'withdrawn')) = (resolved_at IS NOT NULL))
);
CREATE INDEX invoice_disputes_by_invoice ON invoice_disputes (tenant_id, invoice_id);
CREATE INDEX invoice_disputes_by_account ON invoice_disputes (tenant_id, account_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX invoice_disputes_by_ticket ON invoice_disputes (tenant_id, ticket_id);

-- What open disputes contest, per invoice: kept by the trigger below, never written by hand.
ALTER TABLE invoices ADD COLUMN amount_disputed numeric(28, 9) NOT NULL DEFAULT 0 CHECK (amount_disputed >= 0);

CREATE FUNCTION crm_settle_disputes() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  UPDATE invoices i SET amount_disputed = coalesce((
    SELECT sum(d.amount) FROM invoice_disputes d
    WHERE d.tenant_id = i.tenant_id AND d.invoice_id = i.id AND d.state IN ('needs_response', 'under_review')), 0)
  WHERE i.tenant_id = NEW.tenant_id AND i.id = NEW.invoice_id;
  RETURN NULL;
END;
$$;

CREATE TRIGGER invoice_disputes_settle AFTER INSERT OR UPDATE OF state, amount ON invoice_disputes
  FOR EACH ROW EXECUTE FUNCTION crm_settle_disputes();

ALTER TABLE invoice_disputes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_disputes TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON invoice_disputes TO crm_app;
