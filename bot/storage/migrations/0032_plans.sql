-- Monthly work plans and their evaluation (issue #14 §4): one plan per manager and month,
-- drafted (prefilled with visits due, patrols per 台区 and last month's unfinished items),
-- approved or returned by the lead, its result submitted at month end and graded (考核).
-- Whether a visit or patrol item is done is read from the work log when shown; it is kept
-- in plan_items.done_at once the result is submitted.
CREATE TABLE plans (
    id            INTEGER PRIMARY KEY,
    team_id       INTEGER NOT NULL REFERENCES teams(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    month         TEXT NOT NULL,                        -- 'YYYY-MM'
    status        TEXT NOT NULL DEFAULT 'draft' CHECK (status IN
                  ('draft', 'submitted', 'returned', 'approved', 'reported', 'evaluated')),
    rounds        INTEGER NOT NULL DEFAULT 0,           -- times submitted to the lead
    comment       TEXT,                                 -- the lead's reason for 退回
    decided_by    INTEGER REFERENCES users(id),
    decided_at    TEXT,
    submitted_at  TEXT,
    result_at     TEXT,
    done_count    INTEGER,
    total_count   INTEGER,
    grade         TEXT,
    evaluation    TEXT,
    evaluated_by  INTEGER REFERENCES users(id),
    evaluated_at  TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (user_id, month)
);
CREATE INDEX plans_team_month ON plans(team_id, month);

CREATE TABLE plan_items (
    id           INTEGER PRIMARY KEY,
    plan_id      INTEGER NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('visit', 'patrol', 'free')),
    area_id      INTEGER REFERENCES areas(id),
    customer_id  INTEGER REFERENCES customers(id),
    body         TEXT NOT NULL DEFAULT '',
    due_on       TEXT NOT NULL,                         -- 'YYYY-MM-DD', the planned day
    carried      INTEGER NOT NULL DEFAULT 0,            -- 结转 from last month's plan
    position     INTEGER NOT NULL,
    removed      INTEGER NOT NULL DEFAULT 0,
    ticked_at    TEXT,                                  -- a free item's ✅
    done_at      TEXT,                                  -- kept when the result is submitted
    note         TEXT,                                  -- why an item was not done
    created_at   TEXT NOT NULL
);
CREATE INDEX plan_items_plan ON plan_items(plan_id, position);
