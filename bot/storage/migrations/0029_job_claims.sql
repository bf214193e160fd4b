-- A once-only job's send to one person (the morning digest, the Monday report) is claimed in
-- job_runs before it is made (issue #11): an instance that takes the scan over from one that
-- stalled or died skips what the other sent or is sending, and re-sends only a claim that ran
-- out unfinished (the one in flight), marked as a possible repeat.
-- claimed_until NULL: done (every row written before this migration, too); set: in flight
-- until then, by the claim `claimed_by` (a random token, so only its maker gives it back).
ALTER TABLE job_runs ADD COLUMN claimed_by TEXT;
ALTER TABLE job_runs ADD COLUMN claimed_until TEXT;
-- Few rows are ever in flight: the start-up of a single instance finds them by this index.
CREATE INDEX job_runs_claimed ON job_runs(claimed_until) WHERE claimed_until IS NOT NULL;
