-- 台区线损 (issue #14 §2): one row per 台区 and day from the 用电信息采集 system's export
-- (a re-import of a day updates its row), and the line-loss items opened when a 台区's rate is
-- abnormal N days in a row (data/lineloss.json), followed until the rate is normal again or
-- the lead accepts the cause. rate is a percentage; NULL when the file gave none and 供电量 was 0.
CREATE TABLE lineloss_days (
    area_id      INTEGER NOT NULL REFERENCES areas(id),
    day          TEXT NOT NULL,       -- YYYY-MM-DD
    team_id      INTEGER NOT NULL REFERENCES teams(id),
    supplied     REAL NOT NULL,       -- 供电量 kWh
    sold         REAL NOT NULL,       -- 售电量 kWh
    rate         REAL,                -- 线损率 %
    imported_at  TEXT NOT NULL,
    PRIMARY KEY (area_id, day)       -- a team's days are read 台区 by 台区 through it
);

CREATE TABLE lineloss_items (
    id           INTEGER PRIMARY KEY,
    team_id      INTEGER NOT NULL REFERENCES teams(id),
    user_id      INTEGER NOT NULL REFERENCES users(id),   -- the area's manager
    area_id      INTEGER NOT NULL REFERENCES areas(id),
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'checked', 'closed')),
    first_day    TEXT NOT NULL,       -- the abnormal run: its first day
    last_day     TEXT NOT NULL,       -- and the latest abnormal day seen
    worst_rate   REAL,
    opened_at    TEXT NOT NULL,
    due_at       TEXT NOT NULL,       -- 已核查 by then, or the leads are told
    checked_at   TEXT,
    checked_by   INTEGER REFERENCES users(id),
    cause        TEXT,
    note         TEXT,
    photos       TEXT NOT NULL DEFAULT '[]',
    closed_at    TEXT,
    closed_how   TEXT CHECK (closed_how IN ('normal', 'accepted')),
    closed_day   TEXT,                -- the normal day that closed it
    accepted_by  INTEGER REFERENCES users(id),
    updated_at   TEXT
);
-- One item per ongoing abnormal run: an import run twice, or two at once, cannot open two.
CREATE UNIQUE INDEX lineloss_items_open ON lineloss_items(area_id) WHERE status <> 'closed';
CREATE INDEX lineloss_items_area ON lineloss_items(area_id, last_day);
CREATE INDEX lineloss_items_team ON lineloss_items(team_id, status);
