-- A unit of work's whole batch in one statement, so one round trip: the handled
-- message (with its outcome, a command's reply), each aggregate (version checked under a
-- row lock), its events, and the events to mark delivered. A conflict or a repeated
-- message raises, and the statement, being one, leaves nothing behind. Created (or
-- replaced) by every migration, after the versioned steps (schema/v*.sql).
--
-- When it stores an event not delivered yet, it notifies channel `protean_outbox`, so
-- the delivery workers of every process wake: the notification goes out at commit (not
-- at all on a rollback), and equal ones of one transaction collapse into one.
--
-- Returns each commit's sequence before its events, then each commit's new version.
-- Raises SQLSTATE PT208 for a message already handled, and PT409 (DETAIL: the version
-- found) for a version conflict.
CREATE OR REPLACE FUNCTION protean_commit_batch(
    p_aggregates text[], p_ids text[], p_expected bigint[], p_advance bigint[], p_states text[],
    p_event_counts integer[], p_event_ids uuid[], p_type_names text[], p_versions integer[], p_payloads text[],
    p_recorded timestamptz[], p_correlations uuid[], p_causations uuid[], p_handler text, p_message_id uuid,
    p_outcome text, p_delivered uuid[], p_snapshots text[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    k integer := 1;
    n integer;
    actual bigint;
    stored bigint;
    last bigint;
    present boolean;
    found_row boolean;
    firsts bigint[] := '{}';
    versions_out bigint[] := '{}';
BEGIN
    IF p_handler IS NOT NULL THEN
        INSERT INTO protean_handled (handler, message_id, outcome) VALUES (p_handler, p_message_id, p_outcome)
            ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'already handled' USING ERRCODE = 'PT208';
        END IF;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_aggregates, 1), 0) LOOP
        SELECT a.version, a.state IS NOT NULL, a.last_sequence INTO stored, present, last
            FROM protean_aggregates a WHERE a.aggregate = p_aggregates[i] AND a.id = p_ids[i] FOR UPDATE;
        found_row := FOUND;
        IF NOT found_row THEN
            stored := 0;
            actual := 0;
            last := 0;
        ELSIF present THEN
            actual := stored;
        ELSE
            actual := 0;
        END IF;
        IF actual <> p_expected[i] THEN
            RAISE EXCEPTION 'version conflict' USING ERRCODE = 'PT409', DETAIL = actual::text;
        END IF;
        n := p_event_counts[i];
        IF found_row THEN
            -- Versions keep rising across a removal: a stale writer of the removed one is refused.
            UPDATE protean_aggregates SET version = stored + p_advance[i], state = p_states[i], last_sequence = last + n
                WHERE aggregate = p_aggregates[i] AND id = p_ids[i];
        ELSE
            INSERT INTO protean_aggregates (aggregate, id, version, state, last_sequence)
                VALUES (p_aggregates[i], p_ids[i], p_expected[i] + p_advance[i], p_states[i], last + n)
                ON CONFLICT (aggregate, id) DO NOTHING;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'version conflict' USING ERRCODE = 'PT409', DETAIL = '1';
            END IF;
        END IF;
        firsts := firsts || last;
        versions_out := versions_out || (stored + p_advance[i]);
        INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                correlation_id, causation_id, delivered)
            SELECT p_event_ids[j], p_aggregates[i], p_ids[i], last + (j - k + 1), p_type_names[j], p_versions[j], p_payloads[j],
                p_recorded[j], p_correlations[j], p_causations[j], p_event_ids[j] = ANY(p_delivered)
            FROM generate_series(k, k + n - 1) AS j;
        k := k + n;
        IF p_snapshots[i] IS NOT NULL THEN
            INSERT INTO protean_snapshots (aggregate, id, sequence, state)
                VALUES (p_aggregates[i], p_ids[i], last + n, p_snapshots[i])
                ON CONFLICT (aggregate, id, sequence) DO UPDATE SET state = excluded.state;
        END IF;
    END LOOP;
    UPDATE protean_events SET delivered = TRUE WHERE id = ANY(p_delivered) AND NOT delivered;
    IF EXISTS (SELECT 1 FROM unnest(p_event_ids) AS e(id) WHERE NOT coalesce(e.id = ANY(p_delivered), FALSE)) THEN
        PERFORM pg_notify('protean_outbox', '');
    END IF;
    RETURN firsts || versions_out;
END
$$;
