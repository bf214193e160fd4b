-- Records with deadlines (complaints, arrears, outages, repairs) and the reminders they raise.
-- Deadlines are computed from the active rule set when a record is saved and stored with it,
-- so a later change of rule set never moves a deadline already promised.

CREATE TABLE complaints (
    id              INTEGER PRIMARY KEY,
    team_id         INTEGER NOT NULL REFERENCES teams(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    order_no        TEXT,
    kind            TEXT NOT NULL,
    account_no      TEXT,
    customer_id     INTEGER REFERENCES customers(id),
    customer_name   TEXT,
    customer_phone  TEXT,
    accepted_at     TEXT NOT NULL,
    content         TEXT NOT NULL,
    ruleset         TEXT NOT NULL,
    contact_due     TEXT,
    reply_due       TEXT,
    provisional     INTEGER NOT NULL DEFAULT 0,
    contacted_at    TEXT,
    contact_method  TEXT,
    replied_at      TEXT,
    reply_result    TEXT,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'contacted', 'closed')),
    form_token      TEXT UNIQUE,     -- a confirm processed twice saves once
    created_at      TEXT NOT NULL,
    updated_at      TEXT
);
CREATE INDEX complaints_team_status ON complaints(team_id, status);

CREATE TABLE arrears (
    id                INTEGER PRIMARY KEY,
    team_id           INTEGER NOT NULL REFERENCES teams(id),
    user_id           INTEGER NOT NULL REFERENCES users(id),
    account_no        TEXT NOT NULL,
    customer_id       INTEGER REFERENCES customers(id),
    customer_name     TEXT NOT NULL,
    amount_cents      INTEGER NOT NULL CHECK (amount_cents > 0),
    since             TEXT NOT NULL,
    prepaid           INTEGER NOT NULL DEFAULT 0,
    in_register       INTEGER NOT NULL DEFAULT 0,
    medical           INTEGER NOT NULL DEFAULT 0,
    ruleset           TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'collecting'
                      CHECK (status IN ('collecting', 'notice_served', 'cut_off', 'paid', 'restored')),
    notice_served_at  TEXT,
    cutoff_earliest   TEXT,
    lead_decision     TEXT CHECK (lead_decision IN ('approved', 'refused')),
    lead_decided_by   INTEGER REFERENCES users(id),
    cut_off_at        TEXT,
    paid_at           TEXT,
    restore_due       TEXT,
    restored_at       TEXT,
    form_token        TEXT UNIQUE,
    created_at        TEXT NOT NULL,
    updated_at        TEXT
);
CREATE INDEX arrears_team_status ON arrears(team_id, status);

CREATE TABLE outages (
    id                INTEGER PRIMARY KEY,
    team_id           INTEGER NOT NULL REFERENCES teams(id),
    user_id           INTEGER NOT NULL REFERENCES users(id),
    kind              TEXT NOT NULL CHECK (kind IN ('planned', 'temporary')),
    starts_at         TEXT NOT NULL,
    ends_at           TEXT NOT NULL,
    reason            TEXT NOT NULL,
    ruleset           TEXT NOT NULL,
    notice_due        TEXT,
    registered_late   INTEGER NOT NULL DEFAULT 0,
    notice_posted_at  TEXT,
    restored_at       TEXT,
    status            TEXT NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'done', 'cancelled')),
    form_token        TEXT UNIQUE,
    created_at        TEXT NOT NULL,
    updated_at        TEXT,
    CHECK (ends_at > starts_at)
);
CREATE INDEX outages_team_start ON outages(team_id, starts_at);

CREATE TABLE outage_areas (
    outage_id  INTEGER NOT NULL REFERENCES outages(id) ON DELETE CASCADE,
    area_id    INTEGER NOT NULL REFERENCES areas(id),
    PRIMARY KEY (outage_id, area_id)
);

-- The checklist: every active special customer in the affected areas, ticked as told.
CREATE TABLE outage_notices (
    outage_id    INTEGER NOT NULL REFERENCES outages(id) ON DELETE CASCADE,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    told_at      TEXT,
    how          TEXT,
    told_by      INTEGER REFERENCES users(id),
    PRIMARY KEY (outage_id, customer_id)
);

CREATE TABLE repairs (
    id            INTEGER PRIMARY KEY,
    team_id       INTEGER NOT NULL REFERENCES teams(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    area_id       INTEGER NOT NULL REFERENCES areas(id),
    received_at   TEXT NOT NULL,
    description   TEXT NOT NULL,
    ruleset       TEXT NOT NULL,
    arrival_due   TEXT NOT NULL,
    restore_due   TEXT,
    arrived_at    TEXT,
    arrived_lat   REAL,
    arrived_lon   REAL,
    restored_at   TEXT,
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'arrived', 'restored')),
    form_token    TEXT UNIQUE,
    created_at    TEXT NOT NULL,
    updated_at    TEXT
);
CREATE INDEX repairs_team_status ON repairs(team_id, status);

-- One row per message to send. The scanner sends each pending row once; 'sending' marks the
-- one in flight (re-sent after a crash, the single case where a duplicate is possible).
CREATE TABLE reminders (
    id               INTEGER PRIMARY KEY,
    team_id          INTEGER NOT NULL REFERENCES teams(id),
    user_id          INTEGER NOT NULL REFERENCES users(id),
    subject          TEXT NOT NULL,
    subject_id       INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    due_at           TEXT NOT NULL,
    urgent           INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'held', 'sent', 'cancelled',
                                      'digested', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    sent_at          TEXT,
    dedupe_key       TEXT NOT NULL UNIQUE,
    detail           TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL
);
CREATE INDEX reminders_pending ON reminders(due_at) WHERE state IN ('pending', 'sending');
CREATE INDEX reminders_subject ON reminders(subject, subject_id, state);
CREATE INDEX reminders_user ON reminders(user_id, state);  -- 'held': quiet hours, for the digest

-- Per-user preferences and reachability.
CREATE TABLE user_settings (
    user_id         INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    quiet_start     TEXT,            -- 'HH:MM' local; NULL with quiet_end NULL = defaults
    quiet_end       TEXT,
    quiet_off       INTEGER NOT NULL DEFAULT 0,
    unreachable_at  TEXT
);

-- Scheduled jobs that must run once per period (morning digest, weekly report).
CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    period      TEXT NOT NULL,       -- e.g. the local date of a digest
    user_id     INTEGER NOT NULL DEFAULT 0,
    done_at     TEXT NOT NULL,
    PRIMARY KEY (job, period, user_id)
);
