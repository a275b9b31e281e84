-- Real handler failures counted per event (shared.inbox): an event is dead-lettered after
-- a few of them, never because the broker redelivered it (a restart, a clean stop, the
-- database away). A row lives while its event keeps failing; it goes when the event is
-- applied, when it is dead-lettered (a replay starts counting afresh), or with the
-- inbox's retention.
create table if not exists inbox_failures (
    event_id uuid primary key,
    event_type text not null,
    failures integer not null,
    last_error text not null,
    first_failed_at timestamptz not null default now(),
    last_failed_at timestamptz not null default now()
);

-- The inbox's retention purges by age.
create index if not exists inbox_received_at on inbox (received_at);
