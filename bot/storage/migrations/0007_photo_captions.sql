-- A photo's caption (what the user wrote with it) is kept with the photo.
ALTER TABLE worklog_photos ADD COLUMN caption TEXT;
