-- Issue 14. The holder as a responder keeps it (shared.holders.holder_key: 24 octets),
-- written beside the holder's JSON when the event is stored, so that the start of a
-- responder at national scale reads 24 octets a certificate instead of decoding, folding
-- and digesting a JSON document (a million rows: ~10 s of the start). Rows stored before
-- this column have it null and the load derives it from `holder` as before; the next
-- event of their certificate fills it. A change to holder_key's rule must re-derive the
-- column from `holder` in a migration of its own.
alter table certificates add column holder_key bytea
    constraint certificates_holder_key_length check (holder_key is null or length(holder_key) = 24);
