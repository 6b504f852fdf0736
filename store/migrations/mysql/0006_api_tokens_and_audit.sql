-- Team API tokens (only their SHA-256 is stored) and the audit log of
-- monitor changes. Keep in step with ../sqlite/0006_api_tokens_and_audit.sql.
CREATE TABLE IF NOT EXISTS api_tokens (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    team          VARCHAR(64)  NOT NULL,
    token_sha256  CHAR(64)     NOT NULL,
    created_at_ms BIGINT       NOT NULL,
    last4         VARCHAR(8)   NOT NULL,
    UNIQUE KEY api_tokens_sha256 (token_sha256),
    KEY api_tokens_team (team)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS audit_log (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ts_ms       BIGINT       NOT NULL,
    actor       VARCHAR(255) NOT NULL,
    team        VARCHAR(255) NOT NULL,
    action      VARCHAR(16)  NOT NULL,
    monitor_id  BIGINT       NOT NULL,
    before_json MEDIUMTEXT   NULL,
    after_json  MEDIUMTEXT   NULL,
    KEY audit_log_team (team, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
