-- Issue #15 §3 "risky actions need a second thought".
-- 查客户 已停用 lists a team's deactivated special customers (a few): a small partial index of
-- their own, as 0008's customers_team_search (WHERE active = 1) serves the active ones.
CREATE INDEX customers_team_inactive ON customers(
    team_id, active, area_id, name, account_no, address) WHERE active = 0;

-- A withdrawn (deleted) log's number is never given to a new log: worklogs has no
-- AUTOINCREMENT, so SQLite would reuse the highest id, and an old 撤销 / 查看 button or the
-- audit trail's entity_id would then point at someone's new entry.
CREATE TABLE worklog_tombstones (
    id          INTEGER PRIMARY KEY,
    deleted_at  TEXT NOT NULL
);

-- A lead approving a cut-off for a medical (sensitive) household writes down why; shown on
-- the record card and in the weekly report's arrears sheet.
ALTER TABLE arrears ADD COLUMN lead_decision_reason TEXT;
