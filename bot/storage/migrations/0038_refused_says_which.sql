-- Issue #12: nothing on SQLite. On PostgreSQL (0038_refused_says_which.pg.sql) a batch run as
-- one statement names the guard that refused it, rather than being sent again statement by
-- statement to find out; SQLite runs a batch statement by statement in one hop anyway.
SELECT 1;
