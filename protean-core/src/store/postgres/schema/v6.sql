-- Schema version 6: projections and process managers. The rows of projections, in
-- copies (generations), with the state of each projection (its serving copy, how far it
-- was built, a rebuild under way); the commands process managers schedule; and the log
-- read by position. The commit function takes row changes, scheduled commands and
-- cancellations, so the old one (without them) goes.
DROP FUNCTION IF EXISTS protean_commit_batch(text[], text[], bigint[], bigint[], text[], integer[], uuid[], text[],
    integer[], text[], timestamptz[], uuid[], uuid[], text, uuid, text, uuid[], text[]);

-- One row per projection: the serving copy (`generation`, built by projector `version`,
-- through log position `built_through` by its rebuild), the highest log position whose
-- changes it holds, and a rebuild under way (its copy, version, position and the last
-- time its builder wrote), all NULL when there is none.
CREATE TABLE IF NOT EXISTS protean_projections (
    name             TEXT        PRIMARY KEY,
    version          BIGINT      NOT NULL,
    generation       BIGINT      NOT NULL,
    built_through    BIGINT      NOT NULL DEFAULT 0,
    checkpoint       BIGINT      NOT NULL DEFAULT 0,
    build_generation BIGINT,
    build_version    BIGINT,
    build_position   BIGINT,
    build_heartbeat  timestamptz);

-- The rows of every copy of every projection. The declared fields of a projection get
-- expression indexes of their own, made when it registers (partial: `WHERE projection = …`).
CREATE TABLE IF NOT EXISTS protean_projection_rows (
    projection TEXT   NOT NULL,
    generation BIGINT NOT NULL,
    key        TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    json       JSONB  NOT NULL,
    PRIMARY KEY (projection, generation, key));

-- Commands process managers sent or scheduled, until a worker fires them: pending while
-- here, claimed while `claimed_until` runs.
CREATE TABLE IF NOT EXISTS protean_scheduled (
    id             UUID        PRIMARY KEY,
    owner          TEXT        NOT NULL,
    owner_key      TEXT        NOT NULL,
    name           TEXT,
    due_at         timestamptz NOT NULL,
    type_name      TEXT        NOT NULL,
    payload        TEXT        NOT NULL,
    correlation_id UUID        NOT NULL,
    causation_id   UUID        NOT NULL,
    claimed_until  timestamptz,
    claimed_by     UUID);

-- The due ones, earliest first (claims), and an instance's (cancellations, listing).
CREATE INDEX IF NOT EXISTS protean_scheduled_due ON protean_scheduled (due_at);
CREATE INDEX IF NOT EXISTS protean_scheduled_owner ON protean_scheduled (owner, owner_key);

-- The log by position (rebuilds page through it, and find its end), and by type in
-- position order (a rebuild reads only the types its projectors take). Building them
-- reads the events table and blocks writes to it meanwhile.
CREATE UNIQUE INDEX IF NOT EXISTS protean_events_position ON protean_events (position);
CREATE INDEX IF NOT EXISTS protean_events_type_position ON protean_events (type_name, position);
