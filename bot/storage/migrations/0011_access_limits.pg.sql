-- Hardening against misuse (issue #8), PostgreSQL form. Part 1 of the SQLite form rewrites
-- audit rows stored before 0011 (full phone numbers): a PostgreSQL store has none, as it
-- starts at a later version (empty, or filled by `taiqu-bot db copy` from a migrated file).

-- 2. Counting one person's recent reveals (the reveal limit) without scanning the trail.
CREATE INDEX audit_user_action ON audit_log(user_id, action, at) WHERE user_id IS NOT NULL;

-- 3. Wrong invite codes, per chat identity and overall; kept across restarts.
CREATE TABLE invite_failures (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    external_id TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX invite_failures_identity ON invite_failures(channel, external_id, at);
CREATE INDEX invite_failures_at ON invite_failures(at);

-- Set when too many wrong codes arrive overall: until then every code attempt is refused.
CREATE TABLE invite_lockout (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    until       TEXT NOT NULL,
    failures    INTEGER NOT NULL
);
