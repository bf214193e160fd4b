-- Paid Telegram sends (allow_paid_broadcast, 0.1 Stars each) a bot token made on one local
-- day, all instances together (issue #12): TAIQU_TELEGRAM_PAID_PER_DAY caps what a runaway
-- can take from the bot's Stars balance. One row per budget and day.
CREATE TABLE paid_sends (
    name  TEXT NOT NULL,
    day   TEXT NOT NULL,
    sent  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, day)
);
