-- Signing keys are sealed at rest (AES-256-GCM, `SigningKeyCipher`), so a dump of this schema
-- carries no signing power: the key that opens them is SIGNING_KEY_ENCRYPTION_KEY, which lives
-- in the service's environment only. `sealed_with` names that key (a fingerprint, not the key),
-- so a rotation knows which rows to seal again. Rows written before this migration keep their
-- PEM until auth next loads them, which seals them and clears it.
ALTER TABLE signing_keys ALTER COLUMN private_key_pem DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN private_key_sealed bytea;
ALTER TABLE signing_keys ADD COLUMN sealed_with text;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_sealed_or_legacy
    CHECK ((private_key_sealed IS NOT NULL AND sealed_with IS NOT NULL AND private_key_pem IS NULL)
        OR (private_key_sealed IS NULL AND sealed_with IS NULL AND private_key_pem IS NOT NULL));
