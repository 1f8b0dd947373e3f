-- What a tenant decides about its receivables, and what it agreed with each account.
--
-- Aging buckets are the upper bounds, in days past due, of the buckets after "current": {30,60,90}
-- makes current, 1–30, 31–60, 61–90 and 90+. An account goes on credit hold when an invoice is more
-- than credit_hold_days_overdue days past due (NULL: never for lateness) or, with
-- credit_hold_over_limit, when what it owes less its unallocated credit passes its credit limit.

ALTER TABLE tenants ADD COLUMN billing_aging_days integer[] NOT NULL DEFAULT '{30,60,90}'
  CHECK (cardinality(billing_aging_days) BETWEEN 1 AND 8 AND 0 < ALL (billing_aging_days));
ALTER TABLE tenants ADD COLUMN credit_hold_days_overdue integer CHECK (credit_hold_days_overdue BETWEEN 0 AND 3650);
ALTER TABLE tenants ADD COLUMN credit_hold_over_limit boolean NOT NULL DEFAULT true;

CREATE TABLE account_billing_profiles (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  account_id uuid NOT NULL,
  credit_limit_currency text CHECK (credit_limit_currency ~ '^[A-Z]{3}$'),
  credit_limit numeric(28, 9) CHECK (credit_limit >= 0),
  -- prepaid: payments build a credit balance that invoices consume; postpaid: invoices are due
  -- net_days after issue; instalments: invoices are split into scheduled parts.
  payment_terms text NOT NULL DEFAULT 'postpaid' CHECK (payment_terms IN ('prepaid', 'postpaid', 'instalments')),
  net_days integer CHECK (net_days BETWEEN 0 AND 365),
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid,
  PRIMARY KEY (tenant_id, account_id),
  FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
  CHECK ((credit_limit IS NULL) = (credit_limit_currency IS NULL))
);

-- The financial panel's reads: an account's collectible invoices by due date, its payments by day.
CREATE INDEX invoices_collectible_by_account ON invoices (tenant_id, account_id, currency, due_date) INCLUDE (balance)
  WHERE state IN ('open', 'uncollectible') AND balance > 0;

ALTER TABLE account_billing_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON account_billing_profiles TO crm_app
  USING (tenant_id = crm_current_tenant()) WITH CHECK (tenant_id = crm_current_tenant());
GRANT SELECT, INSERT, UPDATE ON account_billing_profiles TO crm_app;
