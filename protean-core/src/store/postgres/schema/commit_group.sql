-- Several units of work's batches in one statement, so one round trip and one
-- transaction (group commit). Created (or replaced) by every migration, after the
-- commit function (`commit_batch.sql`), which it calls once per unit.
--
-- The arrays are `protean_commit_batch`'s, every unit's one after another; the scalars
-- there (handler, message id, outcome, row source) are arrays here, one element per
-- unit; and `p_unit_*` say how many elements of each kind of array belong to each unit:
-- its commits (aggregates, ids, expected, advance, states, event counts, snapshots), its
-- events, its delivered ids, its row changes, its scheduled commands and its
-- cancellations. Each unit runs in a block with an exception handler, a subtransaction of
-- its own: a unit that raises (a version conflict, a message already handled, a row's
-- conflict, anything else) leaves nothing behind and fails alone, while the others
-- commit with the statement. Units see what the units before them in the group wrote, as
-- commits one after another would.
--
-- Returns one row per unit, in order (`o_unit`, 1-based): what `protean_commit_batch`
-- returned (`o_result`), or the SQLSTATE, message and detail of what it raised.
CREATE OR REPLACE FUNCTION protean_commit_group(
    p_unit_commits integer[], p_unit_events integer[], p_unit_delivered integer[], p_unit_rows integer[],
    p_unit_scheduled integer[], p_unit_cancels integer[], p_unit_reads integer[], p_unit_queries integer[],
    p_aggregates text[], p_ids text[], p_expected bigint[], p_advance bigint[], p_states text[],
    p_event_counts integer[], p_event_ids uuid[], p_type_names text[], p_versions integer[], p_payloads text[],
    p_recorded timestamptz[], p_correlations uuid[], p_causations uuid[], p_handlers text[], p_message_ids uuid[],
    p_outcomes text[], p_delivered uuid[], p_snapshots text[], p_row_projections text[], p_row_generations bigint[],
    p_row_keys text[], p_row_expected bigint[], p_row_json text[], p_rows_from uuid[], p_scheduled_ids uuid[],
    p_scheduled_owners text[], p_scheduled_keys text[], p_scheduled_names text[], p_scheduled_due timestamptz[],
    p_scheduled_types text[], p_scheduled_payloads text[], p_scheduled_correlations uuid[],
    p_scheduled_causations uuid[], p_cancel_owners text[], p_cancel_keys text[], p_cancel_names text[],
    p_read_projections text[], p_read_keys text[], p_read_generations bigint[], p_read_versions bigint[],
    p_query_projections text[], p_query_sql text[], p_query_expected text[])
RETURNS TABLE (o_unit integer, o_result bigint[], o_code text, o_message text, o_detail text)
LANGUAGE plpgsql AS $$
DECLARE
    u integer;
    -- Where the unit's elements start in each kind of array, and where they end.
    c integer := 1;
    e integer := 1;
    d integer := 1;
    r integer := 1;
    s integer := 1;
    x integer := 1;
    k integer := 1;
    q integer := 1;
    c2 integer;
    e2 integer;
    d2 integer;
    r2 integer;
    s2 integer;
    x2 integer;
    k2 integer;
    q2 integer;
BEGIN
    FOR u IN 1 .. coalesce(array_length(p_unit_commits, 1), 0) LOOP
        c2 := c + p_unit_commits[u] - 1;
        e2 := e + p_unit_events[u] - 1;
        d2 := d + p_unit_delivered[u] - 1;
        r2 := r + p_unit_rows[u] - 1;
        s2 := s + p_unit_scheduled[u] - 1;
        x2 := x + p_unit_cancels[u] - 1;
        k2 := k + p_unit_reads[u] - 1;
        q2 := q + p_unit_queries[u] - 1;
        o_unit := u;
        o_code := NULL;
        o_message := NULL;
        o_detail := NULL;
        BEGIN
            o_result := protean_commit_batch(
                p_aggregates[c:c2], p_ids[c:c2], p_expected[c:c2], p_advance[c:c2], p_states[c:c2],
                p_event_counts[c:c2], p_event_ids[e:e2], p_type_names[e:e2], p_versions[e:e2], p_payloads[e:e2],
                p_recorded[e:e2], p_correlations[e:e2], p_causations[e:e2], p_handlers[u], p_message_ids[u],
                p_outcomes[u], p_delivered[d:d2], p_snapshots[c:c2], p_row_projections[r:r2],
                p_row_generations[r:r2], p_row_keys[r:r2], p_row_expected[r:r2], p_row_json[r:r2], p_rows_from[u],
                p_scheduled_ids[s:s2], p_scheduled_owners[s:s2], p_scheduled_keys[s:s2], p_scheduled_names[s:s2],
                p_scheduled_due[s:s2], p_scheduled_types[s:s2], p_scheduled_payloads[s:s2],
                p_scheduled_correlations[s:s2], p_scheduled_causations[s:s2], p_cancel_owners[x:x2],
                p_cancel_keys[x:x2], p_cancel_names[x:x2], p_read_projections[k:k2], p_read_keys[k:k2],
                p_read_generations[k:k2], p_read_versions[k:k2], p_query_projections[q:q2], p_query_sql[q:q2],
                p_query_expected[q:q2]);
        EXCEPTION WHEN OTHERS THEN
            o_result := NULL;
            GET STACKED DIAGNOSTICS o_code = RETURNED_SQLSTATE, o_message = MESSAGE_TEXT,
                o_detail = PG_EXCEPTION_DETAIL;
        END;
        RETURN NEXT;
        c := c2 + 1;
        e := e2 + 1;
        d := d2 + 1;
        r := r2 + 1;
        s := s2 + 1;
        x := x2 + 1;
        k := k2 + 1;
        q := q2 + 1;
    END LOOP;
END
$$;
