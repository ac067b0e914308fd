-- What SessionJanitor looks for: sessions revoked, past their timebox (started_at) or past
-- their inactivity timeout (refreshed_at) more than a day ago. Each condition has its index,
-- so a round reads the ended sessions, not the whole table (a bitmap OR of the three).
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_started_at ON sessions (started_at);
CREATE INDEX sessions_refreshed_at ON sessions (refreshed_at);
