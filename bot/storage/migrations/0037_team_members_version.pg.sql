-- Issue #12, PostgreSQL form of 0037_team_members_version.sql (its triggers need a function
-- here): every change to who is in a team moves the team's members_version on.
ALTER TABLE teams ADD COLUMN members_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION taiqu_members_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE teams SET members_version = members_version + 1 WHERE id = OLD.team_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.team_id <> OLD.team_id) THEN
        UPDATE teams SET members_version = members_version + 1 WHERE id = NEW.team_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER members_version_insert AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION taiqu_members_version();
CREATE TRIGGER members_version_update AFTER UPDATE OF team_id, name, role, active ON users
    FOR EACH ROW EXECUTE FUNCTION taiqu_members_version();
CREATE TRIGGER members_version_delete AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION taiqu_members_version();
