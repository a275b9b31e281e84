-- The transactional outbox and the idempotent inbox every service has (shared.outbox,
-- shared.inbox). "if not exists": schemas made before these tables were migrations
-- already have them, with exactly these columns.
create table if not exists outbox (
    seq bigserial primary key,
    event_id uuid not null unique,
    event_type text not null,
    routing_key text not null,
    body bytea not null,
    created_at timestamptz not null default now()
);

create table if not exists inbox (
    event_id uuid primary key,
    event_type text not null,
    received_at timestamptz not null default now()
);
