-- 电能表校验 and 抄表异常 (issue #14 §3, 十项承诺 commitment 7): a customer's request, the
-- deadline from the rule set in working days (calibration result 5; reading anomaly 7 in the
-- 2011 set, 5 in the newer one), the result and when it was given.
CREATE TABLE meter_requests (
    id            INTEGER PRIMARY KEY,
    team_id       INTEGER NOT NULL REFERENCES teams(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    kind          TEXT NOT NULL CHECK (kind IN ('calibration', 'reading')),
    account_no    TEXT NOT NULL,
    customer_id   INTEGER REFERENCES customers(id),
    customer_name TEXT,
    accepted_at   TEXT NOT NULL,
    content       TEXT NOT NULL,
    ruleset       TEXT NOT NULL,
    due_at        TEXT NOT NULL,
    provisional   INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered')),
    answered_at   TEXT,
    result        TEXT,
    form_token    TEXT UNIQUE,
    created_at    TEXT NOT NULL,
    updated_at    TEXT
);
CREATE INDEX meter_requests_team ON meter_requests(team_id, status);
CREATE INDEX meter_requests_user ON meter_requests(user_id, accepted_at);
