-- A deletion is a fact about one cloud's copy: a cloud's notification must not make
-- another cloud's create be dropped, so tombstones are kept per (SP, type, id).
-- Tombstones written before this migration name no SP (''): they still stop a late
-- create from any cloud until they are pruned, as they did.
-- +goose Up
ALTER TABLE resource_tombstone
    ADD COLUMN resource_sp VARCHAR(255) NOT NULL DEFAULT '' FIRST,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (resource_sp, resource_type, resource_id),
    ADD INDEX resource_tombstone_type_id (resource_type, resource_id),
    ADD INDEX resource_tombstone_deleted_at (deleted_at);
ALTER TABLE resource_tombstone ALTER COLUMN resource_sp DROP DEFAULT;
