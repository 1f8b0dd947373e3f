-- Hardening found by an outside client (issue 13).

-- 1. The key that signs page tokens, shared by every crmd node of this database: a token one node
--    issues is accepted by the others, and a token a client edits is refused before it reaches SQL.
--    crm_app reads it through a SECURITY DEFINER function; the table itself is the owner's.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE server_keys (
  name text PRIMARY KEY,
  secret bytea NOT NULL CHECK (length(secret) >= 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO server_keys (name, secret) VALUES ('page_token', gen_random_bytes(32));
REVOKE ALL ON server_keys FROM PUBLIC;

CREATE FUNCTION crm_page_token_key() RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT secret FROM server_keys WHERE name = 'page_token' $$;
REVOKE ALL ON FUNCTION crm_page_token_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_page_token_key() TO crm_app;

-- 2. An import's stream holds a lease that each batch (and a heartbeat while the stream is idle)
--    extends. A stream that dies with its node stops extending it, and readers then see the import
--    as interrupted instead of running forever.
ALTER TABLE imports ADD COLUMN lease_until timestamptz;

-- 3. The planner took this set-returning function's default estimate (1,000 rows) and hash-joined
--    its ids against a sequential scan of the tenant's records. It returns a handful: with a
--    realistic estimate the outer query probes the primary key per candidate.
ALTER FUNCTION crm_match_candidates(text, text, text[], text[], text, text, text, text) ROWS 10;
