-- The billing link's facts: invoices with their lines, payments and credit notes, as a billing system
-- pushes them. crmd does not bill; it keeps these next to the customer.
--
-- Each fact is keyed by (source system, external id): a push is an upsert, and the source's version
-- decides between two pushes of the same fact (an older one never overwrites a newer one).
--
-- Money is numeric(28,9), the exact range of the API's Money (int64 units, nanos): never floating
-- point. What an invoice has been paid, credited and refunded are sums of the allocations that name
-- it, kept by the statement triggers at the end (nothing else writes them), and its balance is
-- derived from them; checks refuse an invoice paid or credited past its total, a payment or credit
-- note allocated past its amount, and allocations across currencies.

-- Which account a billing system's customer is: learnt from a push that names both.
CREATE TABLE billing_customers (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  source_system text NOT NULL,
  external_id text NOT NULL,
  account_id uuid NOT NULL,
  PRIMARY KEY (tenant_id, source_system, external_id),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);

CREATE TABLE invoices (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  source_system text NOT NULL CHECK (source_system ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
  source_version bigint NOT NULL CHECK (source_version > 0),
  account_id uuid NOT NULL,
  number text NOT NULL CHECK (length(number) BETWEEN 1 AND 100),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  issue_date date NOT NULL,
  due_date date NOT NULL,
  payment_terms text CHECK (length(payment_terms) <= 100),
  -- The source's own status, verbatim; `state` is ours.
  vendor_status text NOT NULL CHECK (length(vendor_status) BETWEEN 1 AND 100),
  state text NOT NULL CHECK (state IN ('draft', 'open', 'paid', 'void', 'uncollectible', 'written_off')),
  subtotal numeric(28, 9) NOT NULL,
  tax numeric(28, 9) NOT NULL DEFAULT 0,
  total numeric(28, 9) NOT NULL CHECK (total >= 0),
  amount_paid numeric(28, 9) NOT NULL DEFAULT 0,
  amount_credited numeric(28, 9) NOT NULL DEFAULT 0,
  amount_refunded numeric(28, 9) NOT NULL DEFAULT 0,
  balance numeric(28, 9) GENERATED ALWAYS AS (total - amount_paid - amount_credited + amount_refunded) STORED,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, id, currency),
  CONSTRAINT invoices_source_key UNIQUE (tenant_id, source_system, external_id),
  CONSTRAINT invoices_due_after_issue CHECK (due_date >= issue_date),
  CONSTRAINT invoices_not_overpaid CHECK (total - amount_paid - amount_credited + amount_refunded >= 0),
  CONSTRAINT invoices_refunds_within_paid CHECK (amount_refunded <= amount_paid),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
CREATE INDEX invoices_by_account ON invoices (tenant_id, account_id, issue_date DESC, id DESC);
CREATE INDEX invoices_by_issue ON invoices (tenant_id, issue_date DESC, id DESC);
CREATE INDEX invoices_by_due ON invoices (tenant_id, due_date, id) WHERE state IN ('open', 'uncollectible');

CREATE TABLE invoice_lines (
  tenant_id uuid NOT NULL,
  invoice_id uuid NOT NULL,
  line_number integer NOT NULL CHECK (line_number >= 1),
  -- The source's id of the line, when it has one.
  external_id text CHECK (length(external_id) <= 255),
  kind text NOT NULL CHECK (kind IN ('charge', 'usage')),
  description text CHECK (length(description) <= 1000),
  product text CHECK (length(product) <= 255),
  metric text CHECK (length(metric) <= 100),
  quantity numeric CHECK (abs(quantity) < 1e15),
  unit text CHECK (length(unit) <= 50),
  unit_price numeric(28, 9),
  amount numeric(28, 9) NOT NULL,
  tax numeric(28, 9) NOT NULL DEFAULT 0,
  period_start date,
  period_end date,
  PRIMARY KEY (tenant_id, invoice_id, line_number),
  FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE,
  CHECK (period_end >= period_start),
  CHECK (kind <> 'usage' OR (metric IS NOT NULL AND quantity IS NOT NULL))
);
CREATE INDEX invoice_lines_usage ON invoice_lines (tenant_id, metric, period_start) WHERE kind = 'usage';

CREATE TABLE payments (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  source_system text NOT NULL CHECK (source_system ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
  source_version bigint NOT NULL CHECK (source_version > 0),
  account_id uuid NOT NULL,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount numeric(28, 9) NOT NULL CHECK (amount > 0),
  received_on date NOT NULL,
  method text CHECK (length(method) <= 50),
  reference text CHECK (length(reference) <= 255),
  -- A reversed payment (returned, charged back) counts for nothing and allocates nothing.
  state text NOT NULL CHECK (state IN ('completed', 'reversed')),
  amount_allocated numeric(28, 9) NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, id, currency),
  CONSTRAINT payments_source_key UNIQUE (tenant_id, source_system, external_id),
  CONSTRAINT payments_not_overallocated CHECK (amount_allocated <= amount),
  CONSTRAINT payments_reversed_unallocated CHECK (state = 'completed' OR amount_allocated = 0),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
CREATE INDEX payments_by_account ON payments (tenant_id, account_id, received_on DESC, id DESC);

CREATE TABLE payment_allocations (
  tenant_id uuid NOT NULL,
  payment_id uuid NOT NULL,
  invoice_id uuid NOT NULL,
  currency text NOT NULL,
  amount numeric(28, 9) NOT NULL CHECK (amount > 0),
  PRIMARY KEY (tenant_id, payment_id, invoice_id),
  FOREIGN KEY (tenant_id, payment_id, currency) REFERENCES payments (tenant_id, id, currency) ON DELETE CASCADE,
  CONSTRAINT payment_allocations_same_currency FOREIGN KEY (tenant_id, invoice_id, currency)
    REFERENCES invoices (tenant_id, id, currency)
);
CREATE INDEX payment_allocations_by_invoice ON payment_allocations (tenant_id, invoice_id);

CREATE TABLE credit_notes (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  id uuid NOT NULL,
  source_system text NOT NULL CHECK (source_system ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
  source_version bigint NOT NULL CHECK (source_version > 0),
  account_id uuid NOT NULL,
  number text CHECK (length(number) <= 100),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount numeric(28, 9) NOT NULL CHECK (amount > 0),
  issue_date date NOT NULL,
  -- adjustment: reduces what the invoices it names owe; refund: also pays that money back (their
  -- balance is unchanged, what was paid for them is returned).
  kind text NOT NULL CHECK (kind IN ('adjustment', 'refund')),
  reason text NOT NULL CHECK (reason ~ '^[a-z][a-z0-9_]{0,49}$'),
  state text NOT NULL CHECK (state IN ('issued', 'void')),
  amount_allocated numeric(28, 9) NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, id, currency),
  CONSTRAINT credit_notes_source_key UNIQUE (tenant_id, source_system, external_id),
  CONSTRAINT credit_notes_not_overallocated CHECK (amount_allocated <= amount),
  CONSTRAINT credit_notes_void_unallocated CHECK (state = 'issued' OR amount_allocated = 0),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
CREATE INDEX credit_notes_by_account ON credit_notes (tenant_id, account_id, issue_date DESC, id DESC);

CREATE TABLE credit_note_allocations (
  tenant_id uuid NOT NULL,
  credit_note_id uuid NOT NULL,
  invoice_id uuid NOT NULL,
  currency text NOT NULL,
  amount numeric(28, 9) NOT NULL CHECK (amount > 0),
  PRIMARY KEY (tenant_id, credit_note_id, invoice_id),
  FOREIGN KEY (tenant_id, credit_note_id, currency) REFERENCES credit_notes (tenant_id, id, currency) ON DELETE CASCADE,
  CONSTRAINT credit_note_allocations_same_currency FOREIGN KEY (tenant_id, invoice_id, currency)
    REFERENCES invoices (tenant_id, id, currency)
);
CREATE INDEX credit_note_allocations_by_invoice ON credit_note_allocations (tenant_id, invoice_id);

-- The sums. After each statement that inserts, updates or deletes allocations, the invoices,
-- payments and credit notes it touched are locked and their sums recomputed from what is committed
-- plus this transaction's own rows — a statement of a concurrent transaction waits for the lock and
-- then sees them, so no allocation is missed. A push replaces a fact's allocations in one statement
-- (delete the ones it drops, upsert the rest), so the sums are settled once, after all of it. An
-- allocation never moves to another invoice or fact: that is a delete and an insert.
CREATE FUNCTION crm_settle_invoices(p_tenants uuid[], p_invoices uuid[]) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM 1 FROM invoices i
  WHERE (i.tenant_id, i.id) IN (SELECT * FROM unnest(p_tenants, p_invoices))
  ORDER BY i.tenant_id, i.id
  FOR UPDATE;
  UPDATE invoices i SET amount_paid = s.paid, amount_credited = s.credited, amount_refunded = s.refunded
  FROM (
    SELECT k.t, k.i,
      coalesce((SELECT sum(a.amount) FROM payment_allocations a WHERE a.tenant_id = k.t AND a.invoice_id = k.i), 0) AS paid,
      coalesce((SELECT sum(a.amount) FROM credit_note_allocations a WHERE a.tenant_id = k.t AND a.invoice_id = k.i), 0) AS credited,
      coalesce((
        SELECT sum(a.amount) FROM credit_note_allocations a
        JOIN credit_notes c ON c.tenant_id = a.tenant_id AND c.id = a.credit_note_id
        WHERE a.tenant_id = k.t AND a.invoice_id = k.i AND c.kind = 'refund'
      ), 0) AS refunded
    FROM (SELECT DISTINCT * FROM unnest(p_tenants, p_invoices)) AS k (t, i)
  ) AS s
  WHERE i.tenant_id = s.t AND i.id = s.i
    AND (i.amount_paid, i.amount_credited, i.amount_refunded) IS DISTINCT FROM (s.paid, s.credited, s.refunded);
END;
$$;

-- After a statement on payment_allocations or credit_note_allocations (the transition table
-- `changed`): the invoices, then the payments or credit notes (TG_ARGV[0], named by the allocation
-- column TG_ARGV[1]) it touched.
CREATE FUNCTION crm_settle_allocations() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  v_tenants uuid[];
  v_invoices uuid[];
  v_facts uuid[];
BEGIN
  EXECUTE format('SELECT array_agg(tenant_id), array_agg(invoice_id), array_agg(%I) FROM changed', TG_ARGV[1])
    INTO v_tenants, v_invoices, v_facts;
  IF v_tenants IS NULL THEN RETURN NULL; END IF;
  PERFORM crm_settle_invoices(v_tenants, v_invoices);
  EXECUTE format(
    'SELECT 1 FROM %1$I f WHERE (f.tenant_id, f.id) IN (SELECT * FROM unnest($1, $2)) ORDER BY f.tenant_id, f.id FOR UPDATE;',
    TG_ARGV[0]) USING v_tenants, v_facts;
  EXECUTE format(
    'UPDATE %1$I f SET amount_allocated = coalesce((
       SELECT sum(a.amount) FROM %2$I a WHERE a.tenant_id = f.tenant_id AND a.%3$I = f.id), 0)
     WHERE (f.tenant_id, f.id) IN (SELECT * FROM unnest($1, $2))',
    TG_ARGV[0], TG_TABLE_NAME, TG_ARGV[1]) USING v_tenants, v_facts;
  RETURN NULL;
END;
$$;

-- A credit note's kind decides whether its allocations count as refunded: it changes only while it
-- allocates nothing (a push deletes the allocations, changes the note, then inserts them again).
CREATE FUNCTION crm_credit_note_kind_unallocated() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM credit_note_allocations a WHERE a.tenant_id = NEW.tenant_id AND a.credit_note_id = NEW.id) THEN
    RAISE EXCEPTION 'a credit note''s kind changes only while it allocates nothing' USING ERRCODE = 'feature_not_supported';
  END IF;
  RETURN NEW;
END;
$$;

CREATE FUNCTION crm_allocations_stay_put() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'an allocation does not move to another invoice or fact: delete it and insert another'
    USING ERRCODE = 'feature_not_supported';
END;
$$;

CREATE TRIGGER payment_allocations_inserted AFTER INSERT ON payment_allocations
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION crm_settle_allocations('payments', 'payment_id');
CREATE TRIGGER payment_allocations_deleted AFTER DELETE ON payment_allocations
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION crm_settle_allocations('payments', 'payment_id');
CREATE TRIGGER payment_allocations_updated AFTER UPDATE ON payment_allocations
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION crm_settle_allocations('payments', 'payment_id');
CREATE TRIGGER payment_allocations_stay_put BEFORE UPDATE ON payment_allocations
  FOR EACH ROW WHEN (OLD.invoice_id <> NEW.invoice_id OR OLD.payment_id <> NEW.payment_id OR OLD.tenant_id <> NEW.tenant_id)
  EXECUTE FUNCTION crm_allocations_stay_put();
CREATE TRIGGER credit_note_allocations_inserted AFTER INSERT ON credit_note_allocations
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION crm_settle_allocations('credit_notes', 'credit_note_id');
CREATE TRIGGER credit_note_allocations_deleted AFTER DELETE ON credit_note_allocations
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION crm_settle_allocations('credit_notes', 'credit_note_id');
CREATE TRIGGER credit_note_allocations_updated AFTER UPDATE ON credit_note_allocations
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION crm_settle_allocations('credit_notes', 'credit_note_id');
CREATE TRIGGER credit_note_allocations_stay_put BEFORE UPDATE ON credit_note_allocations
  FOR EACH ROW WHEN (OLD.invoice_id <> NEW.invoice_id OR OLD.credit_note_id <> NEW.credit_note_id OR OLD.tenant_id <> NEW.tenant_id)
  EXECUTE FUNCTION crm_allocations_stay_put();
CREATE TRIGGER credit_notes_kind_unallocated BEFORE UPDATE ON credit_notes
  FOR EACH ROW WHEN (OLD.kind <> NEW.kind) EXECUTE FUNCTION crm_credit_note_kind_unallocated();

ALTER TABLE billing_customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON billing_customers TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON billing_customers TO crm_app;

ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoices TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON invoices TO crm_app;

ALTER TABLE invoice_lines ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invoice_lines TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, DELETE ON invoice_lines TO crm_app;

ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payments TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON payments TO crm_app;

ALTER TABLE payment_allocations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payment_allocations TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON payment_allocations TO crm_app;

ALTER TABLE credit_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON credit_notes TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON credit_notes TO crm_app;

ALTER TABLE credit_note_allocations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON credit_note_allocations TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON credit_note_allocations TO crm_app;
