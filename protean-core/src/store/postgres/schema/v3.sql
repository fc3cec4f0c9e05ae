-- Schema version 3: a claim records its owner, the store that made it.
ALTER TABLE protean_events ADD COLUMN IF NOT EXISTS claimed_by UUID;
