-- Each tenant's key for signing URLs (signed downloads and signed uploads, SignedURLToken): 64
-- hex digits from two gen_random_uuid() calls (PostgreSQL's strong random source; 244 random
-- bits), made for every existing tenant by this migration and for each new one by the default.
-- A key of its own per project means one project's signature never verifies for another, and
-- replacing one project's key revokes all its signed URLs and no one else's.
ALTER TABLE tenants ADD COLUMN url_signing_key text NOT NULL
    DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
