-- PostgreSQL as the shared store, several instances on it (issue #11). The functions the
-- PostgreSQL form (0020_postgresql.pg.sql) adds are SQLite's own built-ins; the rest is the
-- same on both stores.

-- A claim on a due reminder, until this time: a batch read by one instance's scan, then the
-- row in flight. An instance that dies leaves its claims to expire; another takes them then.
ALTER TABLE reminders ADD COLUMN claimed_until TEXT;

-- Who runs the jobs that must run on one instance at a time (the reminder scan with the
-- morning digest and the Monday report): the holder renews `until`; when it stops renewing
-- (it died), another instance takes the row over once `until` has passed.
CREATE TABLE instance_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    until       TEXT NOT NULL
);
