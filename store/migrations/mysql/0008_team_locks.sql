-- One row per team, locked (SELECT ... FOR UPDATE through an upsert) by
-- writes that check a team quota, so two requests racing at a team's limit
-- run one after the other instead of both passing. Keep in step with
-- ../sqlite/0008_team_locks.sql.
CREATE TABLE IF NOT EXISTS team_locks (
    team   VARCHAR(255) NOT NULL PRIMARY KEY,
    writes BIGINT       NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
