-- Schema version 2: an event-sourced aggregate's version counts its events. The commit
-- function takes each commit's advance, so the old one (without it) goes; the records
-- of event-sourced aggregates (state `null`) written by older code, which counted
-- commits, move to their last sequence.
DROP FUNCTION IF EXISTS protean_commit_batch(text[], text[], bigint[], text[], integer[], uuid[], text[],
    integer[], text[], bigint[], uuid[], uuid[], text, uuid, uuid[], text[]);

UPDATE protean_aggregates SET version = last_sequence WHERE state = 'null' AND version < last_sequence;
