-- Issue #13 §3. Free reminders ('明天8点提醒我抄表'): one row per reminder a person set for
-- themselves; its push is a reminders row (subject 'free_reminder'), never sent twice.
CREATE TABLE free_reminders (
    id          INTEGER PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    what        TEXT NOT NULL,
    remind_at   TEXT NOT NULL,
    urgent      INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT 'open',  -- open | done | cancelled
    created_at  TEXT NOT NULL,
    closed_at   TEXT,
    form_token  TEXT UNIQUE
);
CREATE INDEX free_reminders_user_open ON free_reminders(user_id, state, remind_at);

-- What the morning digest already mentioned to whom, for the items it names once per cycle
-- (a special customer due for a visit: once per 走访周期, not every morning).
CREATE TABLE digest_mentions (
    user_id      INTEGER NOT NULL REFERENCES users(id),
    item_key     TEXT NOT NULL,
    mentioned_at TEXT NOT NULL,
    PRIMARY KEY (user_id, item_key)
);
