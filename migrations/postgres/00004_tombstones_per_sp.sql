-- A deletion is a fact about one cloud's copy: a cloud's notification must not make
-- another cloud's create be dropped, so tombstones are kept per (SP, type, id).
-- Tombstones written before this migration name no SP (''): they still stop a late
-- create from any cloud until they are pruned, as they did.
-- +goose Up
ALTER TABLE resource_tombstone ADD COLUMN resource_sp VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE resource_tombstone DROP CONSTRAINT resource_tombstone_pkey;
ALTER TABLE resource_tombstone ADD PRIMARY KEY (resource_sp, resource_type, resource_id);
ALTER TABLE resource_tombstone ALTER COLUMN resource_sp DROP DEFAULT;
CREATE INDEX resource_tombstone_type_id ON resource_tombstone (resource_type, resource_id);
CREATE INDEX resource_tombstone_deleted_at ON resource_tombstone (deleted_at);
