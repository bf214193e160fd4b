-- Issue #12, PostgreSQL form of 0035_team_areas_version.sql (its triggers need a function
-- here): every change to a team's 台区 moves the team's areas_version on.
ALTER TABLE teams ADD COLUMN areas_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION taiqu_areas_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE teams SET areas_version = areas_version + 1 WHERE id = OLD.team_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.team_id <> OLD.team_id) THEN
        UPDATE teams SET areas_version = areas_version + 1 WHERE id = NEW.team_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER areas_version_insert AFTER INSERT ON areas
    FOR EACH ROW EXECUTE FUNCTION taiqu_areas_version();
CREATE TRIGGER areas_version_update AFTER UPDATE OF team_id, name, kind ON areas
    FOR EACH ROW EXECUTE FUNCTION taiqu_areas_version();
CREATE TRIGGER areas_version_delete AFTER DELETE ON areas
    FOR EACH ROW EXECUTE FUNCTION taiqu_areas_version();

-- The managers of one 台区 (see 0035_team_areas_version.sql).
CREATE INDEX user_areas_area ON user_areas(area_id, user_id);
