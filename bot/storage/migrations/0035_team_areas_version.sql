-- Issue #12: a chat step no longer reads and parses every 台区 of the person's team (5,000 in
-- a 供电所 of a province) when the team's list it holds is still current. Every change to a
-- team's 台区 - by the bot, `taiqu-bot`, an import or by hand in SQL, on any instance - moves
-- areas_version on, in the same transaction (triggers, so that no writer can forget it); the
-- step's read compares it with the version held (bot.storage.team_areas).
ALTER TABLE teams ADD COLUMN areas_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER areas_version_insert AFTER INSERT ON areas BEGIN
    UPDATE teams SET areas_version = areas_version + 1 WHERE id = NEW.team_id;
END;

CREATE TRIGGER areas_version_update AFTER UPDATE OF team_id, name, kind ON areas BEGIN
    UPDATE teams SET areas_version = areas_version + 1 WHERE id IN (OLD.team_id, NEW.team_id);
END;

CREATE TRIGGER areas_version_delete AFTER DELETE ON areas BEGIN
    UPDATE teams SET areas_version = areas_version + 1 WHERE id = OLD.team_id;
END;

-- The managers of one 台区 (the owners of the customers due a visit, on /todo), found by the
-- 台区 rather than by reading every manager of the team.
CREATE INDEX user_areas_area ON user_areas(area_id, user_id);
