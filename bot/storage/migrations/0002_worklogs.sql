-- 工作日志: one row per entry, the ticked work items in their own table for counting.
CREATE TABLE worklogs (
    id              INTEGER PRIMARY KEY,
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    area_id         INTEGER NOT NULL REFERENCES areas(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    occurred_at     TEXT NOT NULL,
    time_precision  TEXT NOT NULL DEFAULT 'minute' CHECK (time_precision IN ('minute', 'day')),
    content         TEXT NOT NULL,
    problems        TEXT,
    latitude        REAL,
    longitude       REAL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT,
    updated_by      INTEGER REFERENCES users(id)
);
CREATE INDEX worklogs_team_time ON worklogs(team_id, occurred_at);
CREATE INDEX worklogs_user_time ON worklogs(user_id, occurred_at);

CREATE TABLE worklog_items (
    worklog_id  INTEGER NOT NULL REFERENCES worklogs(id) ON DELETE CASCADE,
    item        TEXT NOT NULL,
    PRIMARY KEY (worklog_id, item)
);

CREATE TABLE worklog_photos (
    id          INTEGER PRIMARY KEY,
    worklog_id  INTEGER NOT NULL REFERENCES worklogs(id) ON DELETE CASCADE,
    channel     TEXT NOT NULL,
    file_ref    TEXT NOT NULL,
    position    INTEGER NOT NULL
);
