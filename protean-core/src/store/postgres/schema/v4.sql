-- Schema version 4: times are timestamptz, no longer BIGINT microseconds since the Unix
-- epoch. The commit function takes its recorded times as timestamptz[], so the old one
-- (bigint[]) goes.
DROP FUNCTION IF EXISTS protean_commit_batch(text[], text[], bigint[], bigint[], text[], integer[], uuid[], text[],
    integer[], text[], bigint[], uuid[], uuid[], text, uuid, uuid[], text[]);

-- Exact to the microsecond over the whole range: whole days, then the microseconds
-- left, added to the epoch as a timestamp without time zone (so the session's time
-- zone and its daylight-saving days play no part), then read as UTC. (`to_timestamp`
-- goes through a double, and may be a microsecond off for today's times.)
ALTER TABLE protean_events
    ALTER COLUMN recorded_at TYPE timestamptz USING
        (timestamp 'epoch' + (recorded_at / 86400000000) * interval '1 day'
            + (recorded_at % 86400000000) * interval '1 microsecond') AT TIME ZONE 'UTC',
    ALTER COLUMN claimed_until TYPE timestamptz USING
        (timestamp 'epoch' + (claimed_until / 86400000000) * interval '1 day'
            + (claimed_until % 86400000000) * interval '1 microsecond') AT TIME ZONE 'UTC';
