-- Send budgets shared by the instances on one store (issue #11): Telegram's limit is per bot
-- token and a WeCom app's per app, not per instance. One row per budget, never more: `tat`
-- is the next send's time when sends are evenly spaced at the budget's rate (GCRA, the
-- theoretical arrival time, epoch seconds), moved on by one atomic statement per send.
-- Replies may take a slot ahead of `tat`'s present; pushes only one that is free now, or
-- every Nth (TAIQU_PUSH_MIN_SHARE): `since_push` counts replies since the last push.
-- `ticket` is the last grant's: a sender tells its grant from a refusal by it.
-- WeCom members' rows (`wecom.member:<userid>`) only hold a lock while a send is counted
-- against the member's minute and hour; unused ones are pruned with the WeCom sends.
CREATE TABLE send_budgets (
    name        TEXT PRIMARY KEY,
    tat         REAL NOT NULL,
    since_push  INTEGER NOT NULL DEFAULT 0,
    ticket      TEXT NOT NULL DEFAULT ''
);
