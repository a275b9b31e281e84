-- The audit trail (shared.audit): every write an operator attempted.
create table if not exists audit_log (
    id bigserial primary key,
    at timestamptz not null default now(),
    actor text not null,
    actor_cas text not null,
    cas text,
    action text not null,
    target_kind text,
    target_id text,
    status integer not null,
    result text not null,
    address text,
    details jsonb
);
create index if not exists audit_log_cas_at on audit_log (cas, at);
