-- Developer accounts (the platform's own users) and the tenants auth knows about.
CREATE TABLE developers (
    id              uuid        PRIMARY KEY,
    email           text        NOT NULL,
    -- lower-cased, trimmed: what uniqueness and look-ups use
    email_normalized text       NOT NULL UNIQUE,
    password_hash   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A tenant registered by provisioning (PUT /internal/v1/tenants/{id}).
CREATE TABLE tenants (
    id          uuid        PRIMARY KEY,
    slug        text        NOT NULL UNIQUE,
    settings    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
