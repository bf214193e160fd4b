-- Issue #11. Besides the due rows (reminders_due), every scan asks for rows in flight whose
-- claim ran out (Reminders.recover_expired) and rows held for a digest (held_users,
-- release_held_of_deactivated). Those read the whole reminders_user index, or on SQLite all
-- pending rows, once a minute: at 10 million rows most of a scan (BENCHMARKS.md). Each gets a
-- partial index as small as the rows it names (a few, usually none). state leads the held one
-- so SQLite, which has no statistics to know the partial index is small, searches it by
-- state instead of scanning reminders_user.
CREATE INDEX reminders_sending ON reminders(claimed_until) WHERE state = 'sending';
CREATE INDEX reminders_held ON reminders(state, user_id) WHERE state = 'held';
