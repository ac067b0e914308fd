-- Auth's admin user list pages through users ORDER BY created_at, id: an index for it, so a
-- page deep into a large tenant does not sort the whole table.
CREATE INDEX users_created_at_id ON users (created_at, id);
