-- The outbox relay claims a batch of rows in a short transaction (shared.outbox) and
-- publishes them with no row lock held across the network: a claim lapses by itself
-- when the process that made it dies, so another relay publishes the rows then.
alter table outbox add column if not exists claimed_until timestamptz;
