-- Reports read only what they report (issue #12; bench/bench_report.py, BENCHMARKS.md).
-- 台区 not patrolled: each 台区 is probed for a 巡视 entry in the period (a few rows per
-- 台区, and only from the index: team_id is in it), instead of every entry of the team.
CREATE INDEX worklogs_area_time ON worklogs(area_id, occurred_at, team_id);
-- The team's entries and items per person: user and 走访 customer come from the index, so
-- the period's table rows (with their long text) are not read. Replaces (team_id,
-- occurred_at), which it also serves.
CREATE INDEX worklogs_team_time_user ON worklogs(team_id, occurred_at, user_id, customer_id);
DROP INDEX IF EXISTS worklogs_team_time;
-- One person's report: that person's records, not a scan of every team's.
CREATE INDEX complaints_user ON complaints(user_id);
CREATE INDEX arrears_user ON arrears(user_id);
CREATE INDEX outages_user ON outages(user_id);
CREATE INDEX repairs_user ON repairs(user_id);
-- The photo count of each entry in a report's file: without it, a scan of every photo per entry.
CREATE INDEX worklog_photos_worklog ON worklog_photos(worklog_id);
