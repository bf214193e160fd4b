-- Teams (班组/供电所), their 台区, people and how they reach the bot.
CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE areas (
    id          INTEGER PRIMARY KEY,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    name        TEXT NOT NULL,
    code        TEXT,
    kind        TEXT NOT NULL DEFAULT 'rural' CHECK (kind IN ('city', 'rural', 'remote')),
    created_at  TEXT NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('manager', 'lead', 'admin')),
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    locale      TEXT,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);
CREATE INDEX users_team ON users(team_id);

CREATE TABLE user_areas (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    area_id     INTEGER NOT NULL REFERENCES areas(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, area_id)
);

-- One row per chat identity (a Telegram user id, a terminal user, later a WeCom user id).
CREATE TABLE identities (
    channel     TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (channel, external_id)
);
CREATE INDEX identities_user ON identities(user_id);

-- Only a hash of the code is kept, so a copy of the database does not leak usable codes.
CREATE TABLE invites (
    id          INTEGER PRIMARY KEY,
    code_hash   TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('manager', 'lead', 'admin')),
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    area_ids    TEXT NOT NULL DEFAULT '[]',
    name        TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    used_by     INTEGER REFERENCES users(id)
);
