-- 隐患/缺陷 (issue #13 §1): a hazard found in a 台区, followed until it is cleared or handed to
-- the lead. The deadline comes from data/hazards.json by severity and is stored with the record,
-- so a later change of the data never moves a deadline already set. Photos are JSON lists of
-- the same "<channel>:<file ref>" strings the work log keeps.
CREATE TABLE hazards (
    id             INTEGER PRIMARY KEY,
    team_id        INTEGER NOT NULL REFERENCES teams(id),
    user_id        INTEGER NOT NULL REFERENCES users(id),
    area_id        INTEGER NOT NULL REFERENCES areas(id),
    what           TEXT NOT NULL,
    place          TEXT,
    severity       TEXT NOT NULL,
    latitude       REAL,
    longitude      REAL,
    photos_before  TEXT NOT NULL DEFAULT '[]',
    worklog_id     INTEGER,             -- the work log it was turned from (no FK: a log may be withdrawn)
    found_at       TEXT NOT NULL,
    due_at         TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'open',  -- open / working / cleared / handed
    started_at     TEXT,
    cleared_at     TEXT,
    result         TEXT,
    photos_after   TEXT NOT NULL DEFAULT '[]',
    handed_at      TEXT,
    handed_reason  TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT,
    form_token     TEXT UNIQUE
);
CREATE INDEX hazards_team_status ON hazards(team_id, status);
CREATE INDEX hazards_team_found ON hazards(team_id, found_at);
CREATE INDEX hazards_worklog ON hazards(worklog_id);
