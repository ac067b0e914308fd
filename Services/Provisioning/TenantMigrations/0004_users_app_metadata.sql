-- What the project (its secret key, through the admin API) says about a user, beside what the
-- user says about themselves (`metadata`): GoTrue's `app_metadata`. Users cannot change it;
-- it travels in their access tokens' `app_metadata` claim, where row-level rules can trust it.
-- A constant default adds the column without rewriting the table.
ALTER TABLE users ADD COLUMN app_metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
