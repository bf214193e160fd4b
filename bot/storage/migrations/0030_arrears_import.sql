-- Arrears lists imported from the marketing system (issue #14 §1). An import is staged first
-- (its valid rows in arrears_import_rows, nothing in arrears yet), shown as a dry run, then
-- applied in short transactions: households matched by 户号 within the team, new ones added
-- for the manager of their 台区, and households of an earlier list missing from this one
-- marked paid.
CREATE TABLE arrears_imports (
    id           INTEGER PRIMARY KEY,
    team_id      INTEGER NOT NULL REFERENCES teams(id),
    user_id      INTEGER REFERENCES users(id),  -- the lead who sent it in chat; NULL: the CLI
    actor        TEXT NOT NULL,
    filename     TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'staging'
                 CHECK (state IN ('staging', 'staged', 'applying', 'applied', 'cancelled')),
    valid_rows   INTEGER NOT NULL DEFAULT 0,
    error_rows   INTEGER NOT NULL DEFAULT 0,
    added        INTEGER NOT NULL DEFAULT 0,
    updated      INTEGER NOT NULL DEFAULT 0,
    paid         INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    applied_at   TEXT
);
CREATE INDEX arrears_imports_team ON arrears_imports(team_id, state);

CREATE TABLE arrears_import_rows (
    import_id     INTEGER NOT NULL REFERENCES arrears_imports(id) ON DELETE CASCADE,
    account_no    TEXT NOT NULL,
    row_no        INTEGER NOT NULL,          -- as Excel shows it
    customer_name TEXT NOT NULL,
    area_id       INTEGER REFERENCES areas(id),  -- NULL: a 台区 the team does not have
    area_name     TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
    since         TEXT NOT NULL,             -- YYYY-MM-DD
    prepaid       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (import_id, account_no)
);

-- The 台区 of a household (from the list; hand-entered records have none), and the latest
-- import whose list named it (NULL: only ever entered by hand, so leaving a list that never
-- had it does not mean it was paid). `imported`: added by an import, followed up through the
-- morning digest's grouped list rather than one reminder per household.
ALTER TABLE arrears ADD COLUMN area_id INTEGER REFERENCES areas(id);
ALTER TABLE arrears ADD COLUMN area_name TEXT;
ALTER TABLE arrears ADD COLUMN listed_in INTEGER REFERENCES arrears_imports(id);
ALTER TABLE arrears ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
CREATE INDEX arrears_team_account ON arrears(team_id, account_no);
-- The dry run's totals and the households leaving the list, read from the index alone.
CREATE INDEX arrears_team_listed ON arrears(team_id, status, listed_in);
