-- PostgreSQL as the shared store, several instances on it (issue #11): the few SQLite
-- functions the queries call, so one text of each query serves both stores. Timestamps are
-- ISO-8601 UTC text on both. The tables below are as in 0020_postgresql.sql.

-- group_concat(value, separator): SQLite's string aggregate (string_agg on PostgreSQL).
CREATE FUNCTION taiqu_concat_step(acc TEXT, value TEXT, sep TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN acc WHEN acc IS NULL THEN value
                ELSE acc || sep || value END $$;
CREATE AGGREGATE group_concat(TEXT, TEXT) (SFUNC = taiqu_concat_step, STYPE = TEXT);

-- julianday(iso text): days since noon, 24 November 4714 BC, as a fraction.
CREATE FUNCTION julianday(t TEXT) RETURNS DOUBLE PRECISION
    LANGUAGE sql STABLE AS $$
    SELECT (extract(epoch FROM t::timestamptz) / 86400 + 2440587.5)::double precision $$;

-- json_extract(document, '$.key'): a top-level value as text (the only form the code uses).
CREATE FUNCTION json_extract(doc TEXT, path TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN path LIKE '$.%' THEN doc::jsonb ->> substr(path, 3) END $$;

-- datetime(iso text [, '+N days']): SQLite's UTC 'YYYY-MM-DD HH:MM:SS' text, so compared
-- exactly as there (a visit's next due moment).
CREATE FUNCTION datetime(t TEXT) RETURNS TEXT
    LANGUAGE sql STABLE AS $$
    SELECT to_char(t::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') $$;
CREATE FUNCTION datetime(t TEXT, modifier TEXT) RETURNS TEXT
    LANGUAGE sql STABLE AS $$
    SELECT to_char((t::timestamptz + modifier::interval) AT TIME ZONE 'UTC',
                   'YYYY-MM-DD HH24:MI:SS') $$;

-- printf('+%d days', n): the one format the code uses, a number put in.
CREATE FUNCTION printf(fmt TEXT, n BIGINT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE AS $$ SELECT replace(fmt, '%d', n::text) $$;

-- A claim on a due reminder, until this time (see 0020_postgresql.sql).
ALTER TABLE reminders ADD COLUMN claimed_until TEXT;

-- The jobs one instance at a time runs, and who holds them until when.
CREATE TABLE instance_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    until       TEXT NOT NULL
);
