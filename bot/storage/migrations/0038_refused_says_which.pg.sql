-- Issue #12: a batch run as one statement (bot.storage.batch.pg_one_statement) whose guard
-- refused it (a second tap, a change the record moved past) fails with the guard's statement
-- number and what it means, so the caller raises Declined or Unchanged at once: before, the
-- whole batch was sent again statement by statement only to learn which guard it was (6 round
-- trips for a refused tap). PostgreSQL's SQL has no RAISE outside a function.
CREATE FUNCTION taiqu_refused(n INTEGER, kind TEXT) RETURNS INTEGER LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = kind || ' ' || n;
END $$;
