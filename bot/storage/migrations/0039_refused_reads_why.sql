-- Issue #12: nothing on SQLite. On PostgreSQL (0039_refused_reads_why.pg.sql) a refused one
-- statement carries its refused reads in its failure; SQLite reads them in the same hop.
SELECT 1;
