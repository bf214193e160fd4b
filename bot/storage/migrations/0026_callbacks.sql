-- 回访 (call-back) after a complaint is answered or a repair restored, and the 95598 order
-- number / 台区 on both record kinds so the weekly report can count them per 台区.
ALTER TABLE complaints ADD COLUMN area_id INTEGER REFERENCES areas(id);
ALTER TABLE repairs ADD COLUMN order_no TEXT;
ALTER TABLE complaints ADD COLUMN callback_due TEXT;
ALTER TABLE complaints ADD COLUMN callback_at TEXT;
ALTER TABLE complaints ADD COLUMN callback_result TEXT;
ALTER TABLE complaints ADD COLUMN callback_note TEXT;
ALTER TABLE repairs ADD COLUMN callback_due TEXT;
ALTER TABLE repairs ADD COLUMN callback_at TEXT;
ALTER TABLE repairs ADD COLUMN callback_result TEXT;
ALTER TABLE repairs ADD COLUMN callback_note TEXT;
CREATE INDEX complaints_callback_due ON complaints(team_id, callback_due);
CREATE INDEX repairs_callback_due ON repairs(team_id, callback_due);
