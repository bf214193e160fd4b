-- PostgreSQL as the shared store (issue #11). Nothing to do on SQLite: the functions its
-- PostgreSQL form (0018_postgresql.pg.sql) adds are SQLite's own built-ins.
SELECT 1;
