-- Schema version 5: background delivery. A handled record keeps what handling produced
-- (a command's reply), so the commit function takes it, and the old one (without it)
-- goes; failed deliveries are kept; and the undelivered events are indexed in log order.
DROP FUNCTION IF EXISTS protean_commit_batch(text[], text[], bigint[], bigint[], text[], integer[], uuid[], text[],
    integer[], text[], timestamptz[], uuid[], uuid[], text, uuid, uuid[], text[]);

ALTER TABLE protean_handled ADD COLUMN IF NOT EXISTS outcome TEXT;

-- A failed delivery of one event to one handler: retrying, dead (a dead letter), or held
-- behind a dead letter of its stream. `position` is the event's log position, for
-- listing in log order; the stream and sequence find the event by its key.
CREATE TABLE IF NOT EXISTS protean_failures (
    handler         TEXT        NOT NULL,
    event_id        UUID        NOT NULL,
    aggregate       TEXT        NOT NULL,
    stream_id       TEXT        NOT NULL,
    sequence        BIGINT      NOT NULL,
    position        BIGINT,
    status          TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL,
    first_error     TEXT        NOT NULL,
    last_error      TEXT        NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    PRIMARY KEY (handler, event_id));

-- Whether a handler's stream is held: its dead and held failures, by stream.
CREATE INDEX IF NOT EXISTS protean_failures_holding ON protean_failures (handler, aggregate, stream_id)
    WHERE status <> 'retrying';

-- The undelivered events in log order: the outbox's size and oldest event without a
-- scan of the log, and the claims' pages.
CREATE INDEX IF NOT EXISTS protean_events_undelivered_position ON protean_events (position) WHERE NOT delivered;
