-- A deletion is a fact about one cloud's copy: a cloud's notification must not make
-- another cloud's create be dropped, so tombstones are kept per (SP, type, id).
-- Tombstones written before this migration name no SP (''): they still stop a late
-- create from any cloud until they are pruned, as they did.
-- +goose Up
CREATE TABLE resource_tombstone_v2 (
    resource_sp VARCHAR(255) NOT NULL,
    resource_type VARCHAR(60) NOT NULL,
    resource_id VARCHAR(255) NOT NULL,
    deleted_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (resource_sp, resource_type, resource_id)
);
INSERT INTO resource_tombstone_v2 (resource_sp, resource_type, resource_id, deleted_at)
SELECT '', resource_type, resource_id, deleted_at FROM resource_tombstone;
DROP TABLE resource_tombstone;
ALTER TABLE resource_tombstone_v2 RENAME TO resource_tombstone;
CREATE INDEX resource_tombstone_type_id ON resource_tombstone (resource_type, resource_id);
CREATE INDEX resource_tombstone_deleted_at ON resource_tombstone (deleted_at);
