-- Desktop activation: refusals are counted per client network (an IPv4 address, an IPv6
-- /64) only, no longer per provider, and typos (malformed serials) no longer count at all.
-- See services/keygen/activation.py.

alter table activation_attempts add column network text;
-- Rows written before this migration: their address is their network (they only matter
-- for the next window's minutes anyway).
update activation_attempts set network = address where network is null;
alter table activation_attempts alter column network set not null;

-- A typo never counts: the ones stored before stop counting now, not 15 minutes later.
update activation_attempts set failed = false where outcome = 'malformed' and failed;

create index activation_attempts_network on activation_attempts (network, at) where failed;
-- No lock is kept per provider any more; attempts naming a provider (its old key tried,
-- its key tried at another house) stay findable for inquiries.
drop index activation_attempts_provider;
create index activation_attempts_provider on activation_attempts (provider_id, at)
    where provider_id is not null;
-- Counting is by network now; inquiries by address read this one.
drop index activation_attempts_address;
create index activation_attempts_address on activation_attempts (address, at);
