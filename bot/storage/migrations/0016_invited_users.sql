-- A named invite creates its person at once (issue #15): the team's pushes (a lead's
-- escalations) are planned for them and wait until they first open the bot; the code then
-- binds that person's chat identity instead of creating a new one.
ALTER TABLE invites ADD COLUMN user_id INTEGER REFERENCES users(id);
