-- Replies and pushes in WeCom's outbox (issue #12): a person's replies go out before their
-- queued pushes (reminders, digests, reports), and pushes leave part of the per-member
-- minute budget to replies. 0 = a reply to what the person did, 1 = a push.
ALTER TABLE wecom_outbox ADD COLUMN push INTEGER NOT NULL DEFAULT 0 CHECK (push IN (0, 1));
