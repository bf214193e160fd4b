-- Telegram by webhook (issue #11): each update Telegram POSTs is recorded here before the
-- 200 is answered, so a crash after the 200 loses nothing, and a redelivery (same update_id)
-- is recorded once and handled once. One person's updates are handled in id order.
CREATE TABLE telegram_inbox (
    id          INTEGER PRIMARY KEY,
    update_id   INTEGER NOT NULL UNIQUE,
    person      TEXT NOT NULL,       -- the sender's Telegram user id ('' when there is none)
    payload     TEXT NOT NULL,       -- the update's JSON; emptied once handled
    received_at TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    done_at     TEXT,
    -- Several instances share the inbox: the one handling a person's earliest row holds it
    -- until claim_until; the others leave that person alone until it is done or expired.
    claimed_by  TEXT,
    claim_until TEXT
);
CREATE INDEX telegram_inbox_new ON telegram_inbox(person, id) WHERE state = 'new';
CREATE INDEX telegram_inbox_received ON telegram_inbox(received_at);
