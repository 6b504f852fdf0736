-- One row per team, touched by writes that check a team quota (MySQL locks
-- it; SQLite's BEGIN IMMEDIATE already serialises every write). Keep in
-- step with ../mysql/0008_team_locks.sql.
CREATE TABLE IF NOT EXISTS team_locks (
    team   TEXT    NOT NULL PRIMARY KEY,
    writes INTEGER NOT NULL DEFAULT 0
);
