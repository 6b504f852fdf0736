-- Team API tokens (only their SHA-256 is stored) and the audit log of
-- monitor changes. Keep in step with ../mysql/0006_api_tokens_and_audit.sql.
CREATE TABLE IF NOT EXISTS api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    team          TEXT    NOT NULL,
    token_sha256  TEXT    NOT NULL UNIQUE,  -- lowercase hex
    created_at_ms BIGINT  NOT NULL,
    last4         TEXT    NOT NULL          -- last 4 characters, to tell tokens apart
);
CREATE INDEX IF NOT EXISTS api_tokens_team ON api_tokens (team);

CREATE TABLE IF NOT EXISTS audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms       BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,  -- cli, admin, or team:<team>:token:<id>
    team        TEXT    NOT NULL,  -- the monitor's team
    action      TEXT    NOT NULL,  -- create, update, delete
    monitor_id  BIGINT  NOT NULL,
    before_json TEXT    NULL,      -- the monitor before the change (JSON)
    after_json  TEXT    NULL       -- the monitor after the change (JSON)
);
CREATE INDEX IF NOT EXISTS audit_log_team ON audit_log (team, id);
