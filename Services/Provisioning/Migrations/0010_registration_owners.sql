-- Projects made for a registration (auth's POST /internal/v1/projects) until their owner is
-- known to exist: auth commits the developer only after provisioning's 202, so a registration
-- that dies in between leaves a project whose owner never came to exist. The orphan
-- reconciler asks auth about these once they are older than its grace period: an existing
-- owner clears the mark, a missing one gets the project deprovisioned.
ALTER TABLE projects ADD COLUMN owner_unconfirmed_since timestamptz;

CREATE INDEX projects_owner_unconfirmed ON projects (owner_unconfirmed_since) WHERE owner_unconfirmed_since IS NOT NULL;

-- A deleted project gives its slug back (its schema, role and registrations are gone with it),
-- so an abandoned registration's slug is not taken forever.
ALTER TABLE projects DROP CONSTRAINT projects_slug_key;
CREATE UNIQUE INDEX projects_slug_key ON projects (slug) WHERE status <> 'deleted';
