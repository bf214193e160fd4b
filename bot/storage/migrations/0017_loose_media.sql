-- Photos and locations sent with no form open (issue #15): kept for TAIQU_LOOSE_MEDIA_MINUTES
-- and attached to the next work log; older rows are deleted whenever one is kept or taken.
CREATE TABLE loose_media (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    photo       TEXT,               -- "<channel>:<file ref>", or NULL for a location
    caption     TEXT,
    latitude    REAL,
    longitude   REAL,
    received_at TEXT NOT NULL
);
CREATE INDEX loose_media_at ON loose_media(received_at);
CREATE INDEX loose_media_user ON loose_media(user_id);
