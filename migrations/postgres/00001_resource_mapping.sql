-- The table exactly as the Python mixmatch created it (SQLAlchemy create_all), so that
-- a database an operator brings from it is taken over as it is: IF NOT EXISTS keeps the
-- rows, and 00002 brings them to the current shape.
-- +goose Up
CREATE TABLE IF NOT EXISTS resource_mapping (
    id SERIAL NOT NULL,
    resource_type VARCHAR(60) NOT NULL,
    resource_id VARCHAR(255) NOT NULL,
    resource_sp VARCHAR(255) NOT NULL,
    project_id VARCHAR(255) NOT NULL,
    PRIMARY KEY (id)
);
