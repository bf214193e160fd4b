-- Issue #12: a lead's chat step no longer reads the team's managers (派任务's sentence matches
-- names against them, its save goes to them) when the list it holds is still current. Every
-- change to who is in a team - a person joining, leaving, renamed, given another role or
-- moved, by the bot, `taiqu-bot` or by hand in SQL, on any instance - moves members_version
-- on, in the same transaction (triggers: no writer can forget it); the step's read compares
-- it with the version held (bot.storage.team_managers), as 0035 does for the team's 台区.
ALTER TABLE teams ADD COLUMN members_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER members_version_insert AFTER INSERT ON users BEGIN
    UPDATE teams SET members_version = members_version + 1 WHERE id = NEW.team_id;
END;

CREATE TRIGGER members_version_update AFTER UPDATE OF team_id, name, role, active ON users BEGIN
    UPDATE teams SET members_version = members_version + 1 WHERE id IN (OLD.team_id, NEW.team_id);
END;

CREATE TRIGGER members_version_delete AFTER DELETE ON users BEGIN
    UPDATE teams SET members_version = members_version + 1 WHERE id = OLD.team_id;
END;
