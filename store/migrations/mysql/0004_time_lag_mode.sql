-- Per-monitor time-lag mode: estimate (interpolated) or exact (record timestamp).
ALTER TABLE monitors ADD COLUMN time_lag_mode VARCHAR(16) NOT NULL DEFAULT 'estimate';
