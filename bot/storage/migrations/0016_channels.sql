-- The channel contract (issue #9): several channels in one process.

-- Which of a person's identities they used last: pushes go there first.
ALTER TABLE identities ADD COLUMN last_seen_at TEXT;

-- Choices a channel could not show as buttons (more than it takes), numbered in the text
-- instead: a typed number or label presses the button. One row per chat identity, replaced
-- by each new reply; kept in the database so a restart between the list and the answer
-- loses nothing.
CREATE TABLE pending_choices (
    channel     TEXT NOT NULL,
    external_id TEXT NOT NULL,
    choices     TEXT NOT NULL,  -- JSON [[label, callback data], ...] in numbered order
    created_at  TEXT NOT NULL,
    PRIMARY KEY (channel, external_id)
);
