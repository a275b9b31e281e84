-- Issuing authorities from the national Trusted List (ETSI TS 119 612, issue 16): what the
-- list says of each (its provider, its service name, its status), and each uploaded list
-- awaiting CNAS's "apply". An issuer the list withdraws is flagged, never deleted: its
-- certificates keep answering until CNAS decides.
alter table issuers add column tl_tsp_name text;
alter table issuers add column tl_service_name text;
alter table issuers add column tl_status text;
alter table issuers add column tl_imported_at timestamptz;
alter table issuers add column tl_withdrawn_at timestamptz;

create table trusted_list_imports (
    id uuid primary key,
    sequence_number bigint not null,
    territory text not null,
    issued_at timestamptz,
    next_update timestamptz,
    -- SHA-256 of the document as uploaded: the same list uploaded twice is one import.
    digest bytea not null,
    -- The CA/QC services read from the verified list (ListedService.to_json each).
    services jsonb not null,
    uploaded_at timestamptz not null,
    uploaded_by text not null,
    applied_at timestamptz,
    applied_by text,
    result jsonb
);
create index trusted_list_imports_uploaded on trusted_list_imports (uploaded_at desc);
