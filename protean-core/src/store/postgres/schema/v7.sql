-- Schema version 7: group commit. The group commit function (`commit_group.sql`, which
-- commits several units of work's batches in one transaction, each in a subtransaction
-- of its own) is created, as the commit function is, by every migration after the
-- versioned steps; the tables do not change. The version moves so that a store that
-- connects without migrating finds the function there. From this version on, the commit
-- function (replaced by every migration as well) sends no `NOTIFY`: the store sends it
-- after the commit, outside its transaction.
SELECT 1;
