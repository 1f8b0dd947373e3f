-- The change feed (docs/changes.md): every committed change_log row, in commit order, at a position
-- a consumer can resume from on any node. PostgreSQL's logical decoding (pgoutput, over the
-- publication below) yields the rows in commit order; one crmd node at a time (the sequencer) copies
-- each row's key here with the next position, its transaction and its commit time.

-- Where a change came from, so a consumer can skip its own writes (the caller's `x-client-origin`).
ALTER TABLE change_log ADD COLUMN origin text CHECK (length(origin) <= 200);

-- A row the sequencer writes when no change has come for a while: decoding it gives the slot a
-- point it may advance to, so WAL written meanwhile (other tables, other databases) is released.
CREATE TABLE change_feed_heartbeat (
  beat bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now()
);

-- Only the key travels through decoding; the feed joins change_log for the rest.
CREATE PUBLICATION crm_change_feed FOR TABLE change_log (tenant_id, sequence), change_feed_heartbeat (beat)
  WITH (publish = 'insert');

CREATE TABLE change_feed (
  position bigint PRIMARY KEY,
  tenant_id uuid NOT NULL,
  change_sequence bigint NOT NULL,
  transaction_id bigint NOT NULL,
  -- The change's place in its transaction, from 1.
  sequence_in_transaction integer NOT NULL,
  commit_lsn pg_lsn NOT NULL,
  commit_time timestamptz NOT NULL,
  UNIQUE (tenant_id, change_sequence)
);
CREATE INDEX change_feed_by_tenant ON change_feed (tenant_id, position);
CREATE INDEX change_feed_by_commit_time ON change_feed (commit_time);

-- The sequencer's bookmark: the end of the last transaction copied (a restart skips what is at or
-- before it) and the next position to hand out. One row.
CREATE TABLE change_feed_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  slot_name text NOT NULL,
  applied_lsn pg_lsn NOT NULL DEFAULT '0/0',
  next_position bigint NOT NULL DEFAULT 1
);
-- Replication slots are per cluster; a database's oid keeps two crm databases in one cluster apart.
INSERT INTO change_feed_state (slot_name)
SELECT 'crm_feed_' || oid FROM pg_database WHERE datname = current_database();

ALTER TABLE change_feed ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON change_feed TO crm_app USING (tenant_id = crm_current_tenant());
GRANT SELECT ON change_feed TO crm_app;
