-- Schema version 9: the delivery workers' signs of life, one row per worker set, for an
-- operator's status. Each set inserts or replaces its row as it beats; beats not renewed
-- for a day are deleted by the next beat.
CREATE TABLE IF NOT EXISTS protean_workers (
    id         uuid        NOT NULL PRIMARY KEY, -- the worker set
    host       text        NOT NULL,
    pid        bigint      NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL, -- its last beat
    every_ms   bigint      NOT NULL, -- how often it beats
    stopped    boolean     NOT NULL  -- true once it stopped gracefully
);
