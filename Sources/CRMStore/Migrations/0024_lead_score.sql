-- A lead's score (0–100): set by callers, imports, or a scoring job; assignment rules can route on it.
ALTER TABLE leads ADD COLUMN score integer CHECK (score BETWEEN 0 AND 100);
