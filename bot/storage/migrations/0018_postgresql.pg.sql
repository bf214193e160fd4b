-- PostgreSQL as the shared store (issue #11): the few SQLite functions the queries call, so
-- one text of each query serves both stores. Timestamps are ISO-8601 UTC text on both.

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
