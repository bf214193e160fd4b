-- Tasks a lead gives to managers (issue #13 §2), one row per assignee, and the messages
-- around them: questions and answers, results, and matters a manager sends up (上报) with
-- the lead's replies. A message reaches its recipient as a reminder row (never lost or
-- doubled); form_token keeps a save processed twice from inserting twice.
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),   -- the assignee
    lead_id     INTEGER NOT NULL REFERENCES users(id),   -- who gave it
    content     TEXT NOT NULL,
    area_id     INTEGER REFERENCES areas(id),
    customer    TEXT,
    due_at      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'done')),
    accepted_at TEXT,
    done_at     TEXT,
    result      TEXT,
    photos      TEXT NOT NULL DEFAULT '[]',
    report_id   INTEGER,                                  -- the 上报 it was made from
    created_at  TEXT NOT NULL,
    updated_at  TEXT,
    form_token  TEXT UNIQUE
);
CREATE INDEX tasks_team_status ON tasks(team_id, status);
CREATE INDEX tasks_user_status ON tasks(user_id, status);

CREATE TABLE task_messages (
    id          INTEGER PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    kind        TEXT NOT NULL CHECK (kind IN ('question', 'answer', 'done', 'report', 'reply')),
    task_id     INTEGER REFERENCES tasks(id),
    sender_id   INTEGER NOT NULL REFERENCES users(id),
    reply_to    INTEGER REFERENCES task_messages(id),
    body        TEXT NOT NULL,
    photos      TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    form_token  TEXT UNIQUE
);
CREATE INDEX task_messages_task ON task_messages(task_id);
