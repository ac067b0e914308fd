-- The key set minted for a project, as hashes only, kept for the project's life: a re-run of
-- generate_api_keys re-sends this set instead of minting a second one, even after the readable
-- keys were revealed (and deleted from api_key_reveals).
CREATE TABLE api_key_sets (
    project_id          uuid        PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    publishable_id      uuid        NOT NULL,
    publishable_prefix  text        NOT NULL,
    publishable_sha256  text        NOT NULL,
    secret_id           uuid        NOT NULL,
    secret_prefix       text        NOT NULL,
    secret_sha256       text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
