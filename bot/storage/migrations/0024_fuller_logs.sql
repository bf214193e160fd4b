-- Fuller work-log entries (issue #13 §5): 处理结果, 关联工单号, every 台区 an entry covers, and
-- the lead's 批注. worklogs.area_id stays the first 台区, so existing queries keep working.
ALTER TABLE worklogs ADD COLUMN result TEXT;
ALTER TABLE worklogs ADD COLUMN ticket_no TEXT;

-- All the 台区 of an entry, the first (worklogs.area_id) at position 0.
CREATE TABLE worklog_areas (
    worklog_id  INTEGER NOT NULL REFERENCES worklogs(id) ON DELETE CASCADE,
    area_id     INTEGER NOT NULL REFERENCES areas(id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (worklog_id, area_id)
);
-- Patrol coverage probes each 台区's entries.
CREATE INDEX worklog_areas_area ON worklog_areas(area_id, worklog_id);
INSERT INTO worklog_areas(worklog_id, area_id, position) SELECT id, area_id, 0 FROM worklogs;

-- A lead's comment (批注) on a manager's entry.
CREATE TABLE worklog_comments (
    id          INTEGER PRIMARY KEY,
    worklog_id  INTEGER NOT NULL REFERENCES worklogs(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    form_token  TEXT UNIQUE
);
CREATE INDEX worklog_comments_log ON worklog_comments(worklog_id, id);
