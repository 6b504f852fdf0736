-- Monitors: one team's request to watch one consumer group on one cluster.
-- Keep in step with ../sqlite/0001_monitors.sql (same columns, same meaning).
CREATE TABLE IF NOT EXISTS monitors (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    team           VARCHAR(255) NOT NULL,
    cluster        VARCHAR(255) NOT NULL,
    consumer_group VARCHAR(255) NOT NULL,
    topics         TEXT         NOT NULL,
    lag_threshold  BIGINT       NOT NULL,
    for_secs       BIGINT       NOT NULL DEFAULT 0,
    emails         TEXT         NOT NULL,
    created_at_ms  BIGINT       NOT NULL,
    updated_at_ms  BIGINT       NOT NULL,
    KEY monitors_cluster_group (cluster, consumer_group)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
