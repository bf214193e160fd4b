-- 特殊客户档案: special customers, their categories, and an audit trail of who did what.
CREATE TABLE customers (
    id                INTEGER PRIMARY KEY,
    team_id           INTEGER NOT NULL REFERENCES teams(id),
    area_id           INTEGER NOT NULL REFERENCES areas(id),
    account_no        TEXT NOT NULL,
    name              TEXT NOT NULL,
    address           TEXT NOT NULL,
    phone             TEXT NOT NULL,
    situation         TEXT,
    emergency_name    TEXT,
    emergency_phone   TEXT,
    visit_every_days  INTEGER,
    notify_first      INTEGER NOT NULL DEFAULT 0,
    proxy_pay         INTEGER NOT NULL DEFAULT 0,
    last_visit_at     TEXT,
    active            INTEGER NOT NULL DEFAULT 1,
    deactivated_at    TEXT,
    deactivated_reason TEXT,
    created_by        INTEGER REFERENCES users(id),
    created_at        TEXT NOT NULL,
    updated_at        TEXT,
    updated_by        INTEGER REFERENCES users(id),
    UNIQUE (team_id, account_no)
);
CREATE INDEX customers_team_area ON customers(team_id, area_id);
CREATE INDEX customers_team_name ON customers(team_id, name);

CREATE TABLE customer_categories (
    customer_id  INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    category     TEXT NOT NULL,
    PRIMARY KEY (customer_id, category)
);
CREATE INDEX customer_categories_category ON customer_categories(category, customer_id);

-- Who did what to which record, when; detail is JSON (old and new values for edits).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    user_id     INTEGER REFERENCES users(id),
    actor       TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   INTEGER,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    at          TEXT NOT NULL
);
CREATE INDEX audit_entity ON audit_log(entity, entity_id, at);

-- The last search of each user, so paging buttons need not carry the query.
CREATE TABLE searches (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    query       TEXT NOT NULL,
    at          TEXT NOT NULL
);

ALTER TABLE worklogs ADD COLUMN customer_id INTEGER REFERENCES customers(id);
CREATE INDEX worklogs_customer ON worklogs(customer_id) WHERE customer_id IS NOT NULL;
