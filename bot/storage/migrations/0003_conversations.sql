-- The open form of each user, written on every step so a restart loses nothing.
CREATE TABLE conversations (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    form        TEXT NOT NULL,
    token       TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- The form token of a saved entry: a confirm processed twice (a re-delivered update) saves once.
ALTER TABLE worklogs ADD COLUMN form_token TEXT;
CREATE UNIQUE INDEX worklogs_form_token ON worklogs(form_token) WHERE form_token IS NOT NULL;
