-- Schema version 1: the tables. Times are BIGINT microseconds since the Unix epoch
-- here; version 4 makes them timestamptz.
CREATE TABLE IF NOT EXISTS protean_schema (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS protean_aggregates (
    aggregate     TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    state         TEXT,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (aggregate, id));

CREATE TABLE IF NOT EXISTS protean_events (
    position       BIGSERIAL,
    id             UUID    NOT NULL,
    aggregate      TEXT    NOT NULL,
    stream_id      TEXT    NOT NULL,
    sequence       BIGINT  NOT NULL,
    type_name      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    recorded_at    BIGINT  NOT NULL,
    correlation_id UUID    NOT NULL,
    causation_id   UUID    NOT NULL,
    delivered      BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_until  BIGINT,
    PRIMARY KEY (aggregate, stream_id, sequence));

-- Few indexes, as every one is written on every insert: the stream's key, and the ids
-- of the events not delivered yet (marking finds them there; delivered ones leave it).
CREATE INDEX IF NOT EXISTS protean_events_undelivered ON protean_events (id) WHERE NOT delivered;

CREATE TABLE IF NOT EXISTS protean_handled (
    handler    TEXT NOT NULL,
    message_id UUID NOT NULL,
    PRIMARY KEY (handler, message_id));

CREATE TABLE IF NOT EXISTS protean_snapshots (
    aggregate TEXT   NOT NULL,
    id        TEXT   NOT NULL,
    sequence  BIGINT NOT NULL,
    state     TEXT   NOT NULL,
    PRIMARY KEY (aggregate, id, sequence));

CREATE TABLE IF NOT EXISTS protean_read_models (
    name TEXT NOT NULL,
    key  TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (name, key));
