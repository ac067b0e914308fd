-- Tenants registered by provisioning, with their realtime limits.
CREATE TABLE tenants (
    id                       uuid        PRIMARY KEY,
    slug                     text        NOT NULL UNIQUE,
    max_concurrent_users     integer     NOT NULL DEFAULT 200 CHECK (max_concurrent_users > 0),
    max_events_per_second    integer     NOT NULL DEFAULT 100 CHECK (max_events_per_second > 0),
    max_channels_per_client  integer     NOT NULL DEFAULT 100 CHECK (max_channels_per_client > 0),
    max_joins_per_second     integer     NOT NULL DEFAULT 100 CHECK (max_joins_per_second > 0),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
