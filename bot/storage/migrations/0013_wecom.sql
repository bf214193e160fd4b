-- The WeCom (企业微信) channel, issue #9. Everything WeCom needs to survive a restart:
-- what came in and is not handled yet, what is to go out, how much each person was sent
-- (WeCom silently drops a member's 31st message in a minute), the pictures people sent
-- (a MediaId expires after 3 days), which cards were sent, who was greeted, team robots.

-- Callbacks, recorded before the empty 200 is answered. The dedupe key (MsgId, or sender +
-- CreateTime + event key + task id) makes a redelivered or replayed callback a no-op.
CREATE TABLE wecom_inbox (
    id          INTEGER PRIMARY KEY,
    dedupe_key  TEXT NOT NULL UNIQUE,
    external_id TEXT NOT NULL,
    xml         TEXT NOT NULL,       -- the decrypted inner XML; emptied once handled
    received_at TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    done_at     TEXT
);
CREATE INDEX wecom_inbox_new ON wecom_inbox(external_id, id) WHERE state = 'new';
CREATE INDEX wecom_inbox_received ON wecom_inbox(received_at);

-- Messages to send, one row per WeCom message, sent per person in id order.
CREATE TABLE wecom_outbox (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('text', 'card', 'file', 'image')),
    payload     TEXT NOT NULL,       -- JSON: the text, the card, the file name
    data        BLOB,                -- a file's or picture's bytes; dropped once sent
    state       TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    not_before  REAL NOT NULL DEFAULT 0,  -- unix seconds: held for the budget or a back-off
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    error       TEXT
);
CREATE INDEX wecom_outbox_open ON wecom_outbox(external_id, id)
    WHERE state IN ('queued', 'sending');

-- One row per message handed to WeCom: the per-person budget (30 a minute, 1000 an hour)
-- is counted here, so a restart does not reset it.
CREATE TABLE wecom_sends (
    external_id TEXT NOT NULL,
    at          REAL NOT NULL        -- unix seconds
);
CREATE INDEX wecom_sends_user ON wecom_sends(external_id, at);
CREATE INDEX wecom_sends_at ON wecom_sends(at);

-- Button cards sent: a tap names the card (TaskId) and the button (EventKey); the label
-- shown after the tap comes from here.
CREATE TABLE wecom_cards (
    task_id     TEXT PRIMARY KEY,
    external_id TEXT NOT NULL,
    buttons     TEXT NOT NULL,       -- JSON {key: label}
    created_at  TEXT NOT NULL
);
CREATE INDEX wecom_cards_created ON wecom_cards(created_at);

-- Pictures people sent, fetched at once; the core refers to them as "wecom:<id>".
CREATE TABLE wecom_media (
    id           INTEGER PRIMARY KEY,
    external_id  TEXT NOT NULL,
    content      BLOB NOT NULL,
    content_type TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    media_id     TEXT,               -- our last upload of it (valid 3 days)
    uploaded_at  REAL
);

-- Who was greeted on opening the app (enter_agent): once per person, not on every open.
CREATE TABLE wecom_greeted (
    external_id TEXT PRIMARY KEY,
    at          TEXT NOT NULL
);

-- A team's WeCom group robot (群机器人) for the Monday summary; the URL carries its key.
CREATE TABLE team_robots (
    team_id     INTEGER PRIMARY KEY REFERENCES teams(id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    set_at      TEXT NOT NULL
);
