-- What a finished form saved, by its token: a second press of 保存 (e.g. after the
-- confirmation was lost on the network) answers "saved as #12", not "stale button".
-- Rows older than TAIQU_SAVED_FORM_MEMORY_HOURS are pruned when new ones are written.
CREATE TABLE finished_forms (
    token       TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    form        TEXT NOT NULL,
    record_id   INTEGER,
    finished_at TEXT NOT NULL
);
CREATE INDEX finished_forms_at ON finished_forms(finished_at);

-- Updates a channel could not handle (e.g. JSON the Bot API library cannot parse): skipped so
-- the bot serves everyone else, kept here to diagnose. `shape` is the update with every text
-- redacted (keys, types, ids and lengths only), so no message text is stored or logged.
CREATE TABLE dead_updates (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    update_id   INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    error       TEXT NOT NULL,
    shape       TEXT NOT NULL,
    UNIQUE (channel, update_id)
);
