-- 业扩报装 (issue #14 §3, 十项承诺 commitments 5 and 6): an application for supply, its class
-- (居民 / 低压非居民 / 高压单电源 / 高压双电源), and the deadlines the rule set gives: the 2011
-- set's supply-plan reply (from the application) and connection (from the acceptance of the
-- customer's works), or the newer set's one end-to-end limit.
CREATE TABLE connection_applications (
    id              INTEGER PRIMARY KEY,
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    customer_class  TEXT NOT NULL
                    CHECK (customer_class IN ('residential', 'lv', 'hv_single', 'hv_dual')),
    applicant       TEXT NOT NULL,
    area_id         INTEGER REFERENCES areas(id),
    content         TEXT NOT NULL,
    accepted_at     TEXT NOT NULL,
    ruleset         TEXT NOT NULL,
    plan_due        TEXT,
    end_due         TEXT,
    connect_due     TEXT,
    provisional     INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'plan_replied', 'inspected', 'connected')),
    plan_replied_at TEXT,
    plan_note       TEXT,
    inspected_at    TEXT,
    connected_at    TEXT,
    form_token      TEXT UNIQUE,
    created_at      TEXT NOT NULL,
    updated_at      TEXT
);
CREATE INDEX connection_applications_team ON connection_applications(team_id, status);
CREATE INDEX connection_applications_user ON connection_applications(user_id, accepted_at);
