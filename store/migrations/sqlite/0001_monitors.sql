-- Monitors: one team's request to watch one consumer group on one cluster.
-- Keep in step with ../mysql/0001_monitors.sql (same columns, same meaning).
CREATE TABLE IF NOT EXISTS monitors (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    team           TEXT    NOT NULL,
    cluster        TEXT    NOT NULL,
    consumer_group TEXT    NOT NULL,
    topics         TEXT    NOT NULL DEFAULT '[]',  -- JSON array of topic names, [] = all
    lag_threshold  BIGINT  NOT NULL,
    for_secs       BIGINT  NOT NULL DEFAULT 0,
    emails         TEXT    NOT NULL DEFAULT '[]',  -- JSON array of addresses
    created_at_ms  BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS monitors_cluster_group ON monitors (cluster, consumer_group);
