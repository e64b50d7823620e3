-- Deletions the ingester has seen, so that a create notification arriving after its
-- delete (queues do not keep order across services or redeliveries) does not bring
-- back a mapping for a resource that is gone. Old rows are pruned by the ingester.
-- +goose Up
CREATE TABLE resource_tombstone (
    resource_type VARCHAR(60) NOT NULL,
    resource_id VARCHAR(255) NOT NULL,
    deleted_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (resource_type, resource_id)
) ENGINE=InnoDB;
