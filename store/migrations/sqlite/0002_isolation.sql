-- Per-monitor isolation level: read_uncommitted (lag vs high watermark) or
-- read_committed (lag vs last stable offset).
ALTER TABLE monitors ADD COLUMN isolation TEXT NOT NULL DEFAULT 'read_uncommitted';
