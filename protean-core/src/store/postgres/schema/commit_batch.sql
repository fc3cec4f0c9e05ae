-- A unit of work's whole batch in one statement, so one round trip: the handled
-- message (with its outcome, a command's reply), each aggregate (version checked under a
-- row lock), its events, the events to mark delivered, the changes to projection rows,
-- and the commands scheduled and deadlines cancelled. A conflict or a repeated message
-- raises, and the statement, being one, leaves nothing behind. Created (or replaced) by
-- every migration, after the versioned steps (schema/v*.sql).
--
-- Row changes follow the rule of docs/storage.md ("Projection rows"): per projection (in
-- name order, so two batches lock them alike), its state row is locked; its changes are
-- skipped while a rebuild runs, or when they come from a stored event (`p_rows_from`) at
-- or before the position its serving copy was built through; otherwise each must name
-- the serving copy and the row's version (0: none), a JSON writing the row at version + 1,
-- a NULL deleting it; and the checkpoint moves to the event's position (or, for changes
-- from this batch's own events, the highest of theirs). Rows are changed after every
-- write to the events table, so a batch takes the events table's lock before a
-- projection's, as a finishing rebuild does (no deadlock between them).
--
-- What the unit of work read and decided on (`p_read_*`: rows by key, with the copy and
-- version read, NULL and 0 for none; `p_query_*`: queries, as a statement that gives the
-- rows' keys, copies and versions as a JSON array, and the array read) is checked in the
-- same pass over the projections, before their changes: a projection read but not changed
-- is locked the same way, so that every commit that changes its rows has committed (and
-- is seen by the statements after the lock, each taking a new snapshot) or waits for this
-- one. A read that no longer holds raises PT411 (DETAIL: `k:i:version` for the i-th row
-- read, with the version found, 0 for none; `q:i` for the i-th query).
--
-- Cancellations go before the scheduled commands, so a batch that cancels a deadline
-- and schedules it again keeps the new one.
--
-- It sends no notification: a transaction that notifies takes a lock for the whole
-- cluster at commit and holds it through its WAL flush, so commits that notified could
-- not share a flush. The store notifies channel `protean_outbox` itself once the commit
-- is durable, outside its transaction, when the batch stored an event not delivered yet
-- or scheduled a command (see `postgres/notify.rs`).
--
-- Returns each commit's sequence before its events, then each commit's new version.
-- Raises SQLSTATE PT208 for a message already handled, PT409 (DETAIL: the version found)
-- for a version conflict, PT411 for a stale read (above), PT410 (DETAIL: `i:version`, the 1-based index of the row change
-- and the row's version found) for a row's, and PT404 (DETAIL: its name) for a row change
-- of a projection not registered.
CREATE OR REPLACE FUNCTION protean_commit_batch(
    p_aggregates text[], p_ids text[], p_expected bigint[], p_advance bigint[], p_states text[],
    p_event_counts integer[], p_event_ids uuid[], p_type_names text[], p_versions integer[], p_payloads text[],
    p_recorded timestamptz[], p_correlations uuid[], p_causations uuid[], p_handler text, p_message_id uuid,
    p_outcome text, p_delivered uuid[], p_snapshots text[], p_row_projections text[], p_row_generations bigint[],
    p_row_keys text[], p_row_expected bigint[], p_row_json text[], p_rows_from uuid, p_scheduled_ids uuid[],
    p_scheduled_owners text[], p_scheduled_keys text[], p_scheduled_names text[], p_scheduled_due timestamptz[],
    p_scheduled_types text[], p_scheduled_payloads text[], p_scheduled_correlations uuid[],
    p_scheduled_causations uuid[], p_cancel_owners text[], p_cancel_keys text[], p_cancel_names text[],
    p_read_projections text[], p_read_keys text[], p_read_generations bigint[], p_read_versions bigint[],
    p_query_projections text[], p_query_sql text[], p_query_expected text[])
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
    change_count integer := coalesce(array_length(p_row_keys, 1), 0);
    batch_position bigint;
    from_position bigint;
    proj text;
    serving bigint;
    built bigint;
    building boolean;
    row_version bigint;
    row_generation bigint;
    registered boolean;
    read_count integer := coalesce(array_length(p_read_keys, 1), 0);
    query_count integer := coalesce(array_length(p_query_sql, 1), 0);
    found_rows jsonb;
BEGIN
    IF p_handler IS NOT NULL THEN
        INSERT INTO protean_handled (handler, message_id, outcome) VALUES (p_handler, p_message_id, p_outcome)
            ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'already handled' USING ERRCODE = 'PT208';
        END IF;
    END IF;
    -- The position of the event the row changes come from, found before it is marked
    -- delivered: by the index of the undelivered events (it normally is one), else by a
    -- scan of the log.
    IF change_count > 0 AND p_rows_from IS NOT NULL THEN
        SELECT e.position INTO from_position FROM protean_events e WHERE e.id = p_rows_from AND NOT e.delivered;
        IF NOT FOUND THEN
            SELECT e.position INTO from_position FROM protean_events e WHERE e.id = p_rows_from;
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
        -- One event (the usual case) by a statement whose plan is cached; several by one
        -- statement over the range (planned again every time: its row count varies).
        IF n = 1 THEN
            INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                    correlation_id, causation_id, delivered)
                VALUES (p_event_ids[k], p_aggregates[i], p_ids[i], last + 1, p_type_names[k], p_versions[k],
                    p_payloads[k], p_recorded[k], p_correlations[k], p_causations[k],
                    p_event_ids[k] = ANY(p_delivered))
                RETURNING greatest(batch_position, position) INTO batch_position;
        ELSIF n > 1 THEN
            WITH inserted AS (
                INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
                        recorded_at, correlation_id, causation_id, delivered)
                    SELECT p_event_ids[j], p_aggregates[i], p_ids[i], last + (j - k + 1), p_type_names[j],
                        p_versions[j], p_payloads[j], p_recorded[j], p_correlations[j], p_causations[j],
                        p_event_ids[j] = ANY(p_delivered)
                    FROM generate_series(k, k + n - 1) AS j
                    RETURNING position)
            SELECT greatest(batch_position, max(inserted.position)) INTO batch_position FROM inserted;
        END IF;
        k := k + n;
        IF p_snapshots[i] IS NOT NULL THEN
            INSERT INTO protean_snapshots (aggregate, id, sequence, state)
                VALUES (p_aggregates[i], p_ids[i], last + n, p_snapshots[i])
                ON CONFLICT (aggregate, id, sequence) DO UPDATE SET state = excluded.state;
        END IF;
    END LOOP;
    -- Statements with nothing to do are skipped: each costs a statement's overhead.
    IF coalesce(array_length(p_delivered, 1), 0) > 0 THEN
        UPDATE protean_events SET delivered = TRUE WHERE id = ANY(p_delivered) AND NOT delivered;
    END IF;
    IF p_rows_from IS NULL THEN
        from_position := batch_position;
    END IF;
    IF change_count > 0 OR read_count > 0 OR query_count > 0 THEN
        FOR proj IN SELECT DISTINCT r.name FROM unnest(p_row_projections || p_read_projections || p_query_projections)
                AS r(name) ORDER BY r.name LOOP
            SELECT s.generation, s.built_through, s.build_generation IS NOT NULL INTO serving, built, building
                FROM protean_projections s WHERE s.name = proj FOR NO KEY UPDATE;
            registered := FOUND;
            FOR i IN 1 .. read_count LOOP
                CONTINUE WHEN p_read_projections[i] <> proj;
                SELECT r.generation, r.version INTO row_generation, row_version FROM protean_projection_rows r
                    WHERE r.projection = proj AND r.generation = serving AND r.key = p_read_keys[i];
                IF NOT FOUND THEN
                    row_generation := NULL;
                    row_version := 0;
                END IF;
                IF row_generation IS DISTINCT FROM p_read_generations[i] OR row_version <> p_read_versions[i] THEN
                    RAISE EXCEPTION 'a row read has changed' USING ERRCODE = 'PT411',
                        DETAIL = 'k:' || i::text || ':' || row_version::text;
                END IF;
            END LOOP;
            FOR i IN 1 .. query_count LOOP
                CONTINUE WHEN p_query_projections[i] <> proj;
                EXECUTE p_query_sql[i] INTO found_rows;
                IF found_rows IS DISTINCT FROM p_query_expected[i]::jsonb THEN
                    RAISE EXCEPTION 'the rows of a query read have changed' USING ERRCODE = 'PT411',
                        DETAIL = 'q:' || i::text;
                END IF;
            END LOOP;
            CONTINUE WHEN NOT (proj = ANY(p_row_projections));
            IF NOT registered THEN
                RAISE EXCEPTION 'projection not registered' USING ERRCODE = 'PT404', DETAIL = proj;
            END IF;
            -- A rebuild runs (it covers the event), or covered it already.
            CONTINUE WHEN building OR (p_rows_from IS NOT NULL AND from_position <= built);
            FOR i IN 1 .. change_count LOOP
                CONTINUE WHEN p_row_projections[i] <> proj;
                SELECT r.version INTO row_version FROM protean_projection_rows r
                    WHERE r.projection = proj AND r.generation = serving AND r.key = p_row_keys[i];
                IF NOT FOUND THEN
                    row_version := 0;
                END IF;
                IF p_row_generations[i] <> serving OR p_row_expected[i] <> row_version THEN
                    RAISE EXCEPTION 'row version conflict' USING ERRCODE = 'PT410', DETAIL = i::text || ':' || row_version::text;
                END IF;
                IF p_row_json[i] IS NULL THEN
                    DELETE FROM protean_projection_rows r
                        WHERE r.projection = proj AND r.generation = serving AND r.key = p_row_keys[i];
                ELSIF row_version = 0 THEN
                    INSERT INTO protean_projection_rows (projection, generation, key, version, json)
                        VALUES (proj, serving, p_row_keys[i], 1, p_row_json[i]::jsonb);
                ELSE
                    UPDATE protean_projection_rows r SET version = row_version + 1, json = p_row_json[i]::jsonb
                        WHERE r.projection = proj AND r.generation = serving AND r.key = p_row_keys[i];
                END IF;
            END LOOP;
            IF from_position IS NOT NULL THEN
                UPDATE protean_projections s SET checkpoint = from_position WHERE s.name = proj AND s.checkpoint < from_position;
            END IF;
        END LOOP;
    END IF;
    IF coalesce(array_length(p_cancel_owners, 1), 0) > 0 THEN
        DELETE FROM protean_scheduled s USING unnest(p_cancel_owners, p_cancel_keys, p_cancel_names) AS c(o, ok, nm)
            WHERE s.owner = c.o AND s.owner_key = c.ok AND s.name = c.nm;
    END IF;
    IF coalesce(array_length(p_scheduled_ids, 1), 0) > 0 THEN
        -- A command already kept (the same batch again) stays as it is.
        INSERT INTO protean_scheduled (id, owner, owner_key, name, due_at, type_name, payload, correlation_id,
                causation_id)
            SELECT * FROM unnest(p_scheduled_ids, p_scheduled_owners, p_scheduled_keys, p_scheduled_names,
                p_scheduled_due, p_scheduled_types, p_scheduled_payloads, p_scheduled_correlations,
                p_scheduled_causations)
            ON CONFLICT (id) DO NOTHING;
    END IF;
    RETURN firsts || versions_out;
END
$$;
