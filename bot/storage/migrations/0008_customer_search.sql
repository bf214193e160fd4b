-- 查客户 at scale (issue #3; bench/bench_customers.py, BENCHMARKS.md). Every search counts and
-- pages one team's active records. A team's rows lie scattered over the whole table (records
-- of 50 teams registered over time), so without this index a search read a table page per
-- record: p50 9 ms, p99 13-31 ms (by machine load) for a 3,000-customer team at 100k
-- customers, 48 ms p50 for a 17k-customer team. This index holds every
-- column a search filters or sorts on, team by team, in the page order (台区, name): the count
-- reads only the index and the page's ids come straight from it (~75 bytes a record).
-- Partial (active = 1, the filter every search has): other queries with team_id but without
-- `active = 1`, such as the import's 户号 look-up, are not drawn from their unique index to it.
CREATE INDEX customers_team_search ON customers(
    team_id, active, area_id, name, account_no, address, visit_every_days, last_visit_at)
    WHERE active = 1;

-- The (team_id, name) index served no query once search went through the index above, and
-- costs about 1 s per 100k-row import.
DROP INDEX IF EXISTS customers_team_name;
