-- Adds created_at/updated_at (with defaults, so an operator's INSERT of the four upstream
-- columns still works) and the unique key on (resource_type, resource_id) that upstream
-- lacked. Rows from upstream are normalised first (ids without dashes, lower case) and
-- duplicates collapse to the newest row, the last thing upstream learned.
-- MySQL refuses a DELETE whose subquery reads the same table, unless the subquery is
-- materialised as a derived table (the "keep" alias below).
-- +goose Up
ALTER TABLE resource_mapping
    ADD COLUMN created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    ADD COLUMN updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
        ON UPDATE CURRENT_TIMESTAMP(6);

UPDATE resource_mapping
   SET resource_id = LOWER(REPLACE(resource_id, '-', '')),
       project_id = LOWER(REPLACE(project_id, '-', ''));

DELETE FROM resource_mapping
 WHERE id NOT IN (SELECT id FROM (SELECT MAX(id) AS id FROM resource_mapping
                                   GROUP BY resource_type, resource_id) AS keep);

CREATE UNIQUE INDEX resource_mapping_type_id ON resource_mapping (resource_type, resource_id);
CREATE INDEX resource_mapping_sp ON resource_mapping (resource_sp);
CREATE INDEX resource_mapping_project ON resource_mapping (project_id);
