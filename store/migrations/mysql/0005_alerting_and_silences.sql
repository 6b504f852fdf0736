-- Per-monitor alerting overrides (NULL = the rules file's default) and
-- silences. Keep in step with ../sqlite/0005_alerting_and_silences.sql.
ALTER TABLE monitors ADD COLUMN topic_lag_threshold BIGINT NULL;
ALTER TABLE monitors ADD COLUMN total_lag_threshold BIGINT NULL;
ALTER TABLE monitors ADD COLUMN time_lag_threshold_secs BIGINT NULL;
ALTER TABLE monitors ADD COLUMN repeat_interval_secs BIGINT NULL;
ALTER TABLE monitors ADD COLUMN webhooks VARCHAR(8192) NOT NULL DEFAULT '[]';

CREATE TABLE IF NOT EXISTS silences (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    team           VARCHAR(255) NOT NULL,
    monitor_id     BIGINT       NULL,
    cluster        VARCHAR(255) NULL,
    consumer_group VARCHAR(255) NULL,
    rule           VARCHAR(64)  NULL,
    starts_at_ms   BIGINT       NOT NULL,
    ends_at_ms     BIGINT       NOT NULL,
    created_by     VARCHAR(255) NOT NULL,
    comment        VARCHAR(1024) NOT NULL DEFAULT '',
    created_at_ms  BIGINT       NOT NULL,
    KEY silences_ends (ends_at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
