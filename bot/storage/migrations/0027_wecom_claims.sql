-- WeCom on the shared store, several instances (issue #11). Any instance may receive any
-- callback and send any outgoing message; the one handling a person's earliest callback, or
-- sending a person's next message, holds it until claim_until. The others leave that person
-- alone until it is done or the claim has run out (its holder died): then one of them takes
-- over. Both tables as telegram_inbox (0018_telegram_inbox.sql).
ALTER TABLE wecom_inbox ADD COLUMN claimed_by TEXT;
ALTER TABLE wecom_inbox ADD COLUMN claim_until TEXT;   -- ISO-8601 UTC, as received_at
ALTER TABLE wecom_outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE wecom_outbox ADD COLUMN claim_until REAL;  -- unix seconds, as not_before
