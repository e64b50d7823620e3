-- Adds created_at/updated_at (with defaults, so an operator's INSERT of the four upstream
-- columns still works) and the unique key on (resource_type, resource_id) that upstream
-- lacked. Rows from upstream are normalised first (ids without dashes, lower case) and
-- duplicates collapse to the newest row, the last thing upstream learned.
-- SQLite cannot ADD COLUMN with a CURRENT_TIMESTAMP default, hence the table rebuild.
-- +goose Up
CREATE TABLE resource_mapping_v2 (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    resource_type VARCHAR(60) NOT NULL,
    resource_id VARCHAR(255) NOT NULL,
    resource_sp VARCHAR(255) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

INSERT INTO resource_mapping_v2 (id, resource_type, resource_id, resource_sp, project_id)
SELECT id, resource_type, LOWER(REPLACE(resource_id, '-', '')), resource_sp,
       LOWER(REPLACE(project_id, '-', ''))
  FROM resource_mapping
 WHERE id IN (SELECT MAX(id) FROM resource_mapping
               GROUP BY resource_type, LOWER(REPLACE(resource_id, '-', '')));

DROP TABLE resource_mapping;
ALTER TABLE resource_mapping_v2 RENAME TO resource_mapping;

CREATE UNIQUE INDEX resource_mapping_type_id ON resource_mapping (resource_type, resource_id);
CREATE INDEX resource_mapping_sp ON resource_mapping (resource_sp);
CREATE INDEX resource_mapping_project ON resource_mapping (project_id);
