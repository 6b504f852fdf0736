-- Per-monitor alerting overrides (NULL = the rules file's default) and
-- silences. Keep in step with ../mysql/0005_alerting_and_silences.sql.
ALTER TABLE monitors ADD COLUMN topic_lag_threshold BIGINT NULL;
ALTER TABLE monitors ADD COLUMN total_lag_threshold BIGINT NULL;
ALTER TABLE monitors ADD COLUMN time_lag_threshold_secs BIGINT NULL;
ALTER TABLE monitors ADD COLUMN repeat_interval_secs BIGINT NULL;
ALTER TABLE monitors ADD COLUMN webhooks TEXT NOT NULL DEFAULT '[]';  -- JSON array of URLs

CREATE TABLE IF NOT EXISTS silences (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    team           TEXT    NOT NULL,
    monitor_id     BIGINT  NULL,
    cluster        TEXT    NULL,
    consumer_group TEXT    NULL,
    rule           TEXT    NULL,
    starts_at_ms   BIGINT  NOT NULL,
    ends_at_ms     BIGINT  NOT NULL,
    created_by     TEXT    NOT NULL,
    comment        TEXT    NOT NULL DEFAULT '',
    created_at_ms  BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS silences_ends ON silences (ends_at_ms);
