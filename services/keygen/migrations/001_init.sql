-- keygen: providers ("Furnizori / Persoane juridice"), their edit history, activation
-- keys (keyed hashes only) and desktop activation attempts (throttling, kept across
-- restarts). Tables are unqualified: the migration runs with search_path = keygen.

create table providers (
    id uuid primary key,
    cas text not null,
    cui text not null,                 -- CUI without the RO prefix, or a 13-digit CNP
    name text not null,
    description text,
    code text not null,                -- "Cod": defaults to the CUI
    cui_date date,
    org_type text,
    fiscal_attribute text,
    fiscal_attribute_date date,
    trade_register_no text,
    registered_on date,
    country text not null,
    locality text,
    currency text not null,
    print_order integer,
    valid_from date,
    valid_to date,
    work_point text,
    location_type text,
    legal_representative_name text,
    legal_representative_cnp text,
    -- name, CUI and code folded (lower case, no diacritics) for the list's q search.
    search_text text not null,
    created_at timestamptz not null,
    created_by text not null,
    updated_at timestamptz not null,
    updated_by text not null,
    -- A provider may contract with several houses, but appears once in each.
    constraint providers_cas_cui unique (cas, cui),
    constraint providers_representative check (
        (legal_representative_name is null) = (legal_representative_cnp is null))
);
create index providers_cas_name on providers (cas, name, id);
create index providers_name on providers (name, id);

create table provider_history (
    id bigserial primary key,
    provider_id uuid not null references providers (id),
    at timestamptz not null,
    by text not null,
    action text not null check (action in ('created', 'updated')),
    changes jsonb not null             -- {field: {"old": ..., "new": ...}}
);
create index provider_history_provider on provider_history (provider_id, id);

create table activation_keys (
    id uuid primary key,               -- key_id, as KeyIssued carries it
    provider_id uuid not null references providers (id),
    digest bytea not null,             -- HMAC-SHA256(pepper, canonical serial)
    reset boolean not null,
    issued_at timestamptz not null,
    issued_by text not null,
    replaced_at timestamptz,
    replaced_by text,
    constraint activation_keys_replaced check ((replaced_at is null) = (replaced_by is null))
);
-- At most one current key per provider: the backstop behind the row lock.
create unique index activation_keys_current on activation_keys (provider_id)
    where replaced_at is null;
-- Activation finds a key by its digest, current or replaced (a replaced key is a
-- failure counted against its provider). Unique: equal digests mean equal serials.
create unique index activation_keys_digest on activation_keys (digest);
create index activation_keys_provider on activation_keys (provider_id, issued_at);

create table activation_attempts (
    id bigserial primary key,
    at timestamptz not null,
    address text not null,
    cas text,
    provider_id uuid,                  -- when the serial named a provider's key
    outcome text not null,
    failed boolean not null            -- counts towards the throttle
);
create index activation_attempts_address on activation_attempts (address, at) where failed;
create index activation_attempts_provider on activation_attempts (provider_id, at)
    where failed and provider_id is not null;
create index activation_attempts_at on activation_attempts (at);
