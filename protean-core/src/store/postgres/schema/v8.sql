-- Schema version 8: decisions on read models. The commit functions (`commit_batch.sql`,
-- `commit_group.sql`, created again after the versioned steps) take what a unit of work
-- read from projections and check it in the commit's transaction; they gain parameters,
-- so the functions of version 7 are dropped here rather than left beside them as
-- overloads. The tables do not change.
DROP FUNCTION IF EXISTS protean_commit_group(integer[], integer[], integer[], integer[], integer[], integer[],
    text[], text[], bigint[], bigint[], text[], integer[], uuid[], text[], integer[], text[], timestamptz[], uuid[],
    uuid[], text[], uuid[], text[], uuid[], text[], text[], bigint[], text[], bigint[], text[], uuid[], uuid[],
    text[], text[], text[], timestamptz[], text[], text[], uuid[], uuid[], text[], text[], text[]);
DROP FUNCTION IF EXISTS protean_commit_batch(text[], text[], bigint[], bigint[], text[], integer[], uuid[], text[],
    integer[], text[], timestamptz[], uuid[], uuid[], text, uuid, text, uuid[], text[], text[], bigint[], text[],
    bigint[], text[], uuid, uuid[], text[], text[], text[], timestamptz[], text[], text[], uuid[], uuid[], text[],
    text[], text[]);
