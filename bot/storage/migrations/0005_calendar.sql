-- Admin-managed corrections to the working-day calendar (holidays and 调休 make-up days),
-- e.g. for a year chinese-calendar does not know yet.
CREATE TABLE calendar_overrides (
    day         TEXT PRIMARY KEY,           -- YYYY-MM-DD
    kind        TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    note        TEXT,
    created_at  TEXT NOT NULL
);
