-- Issue #12: a batch run as one statement whose guard refused it carries out what its refusal
-- is told from (bot.storage.batch.Batch.read_if_refused: whose 户号 an insert found taken,
-- the record an edit found changed) in the failure's DETAIL, read by the same statement: the
-- reason no longer costs a round trip after the refused write. 0038's taiqu_refused stays.
CREATE FUNCTION taiqu_refused(n INTEGER, kind TEXT, said TEXT) RETURNS INTEGER
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = kind || ' ' || n, DETAIL = said;
END $$;
