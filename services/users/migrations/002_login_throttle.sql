-- Logging in: the lockout of an account from one client address, and the attempts per
-- address (services/users/README.md "Logging in"). users.failed_logins and
-- users.locked_until (001) are no longer read: a lock is a pair's, never an account's.

-- Wrong passwords in a row for one user name (as typed: existing or not, counted alike)
-- from one client address, and that pair's lock.
create table login_failures (
    username text not null,
    address text not null,
    failed_logins integer not null default 0,
    locked_until timestamptz,
    updated_at timestamptz not null default now(),
    primary key (username, address)
);
create index login_failures_updated_at on login_failures (updated_at);

-- Login attempts per client address and fixed window; the sliding window reads the
-- current and the previous one. Shared by every replica. Unlogged: a counter that
-- lives a minute or two is not worth a WAL write per attempt; a crash or a failover
-- forgets the counts, which only lets an address try again a little sooner.
create unlogged table login_windows (
    address text not null,
    window_start timestamptz not null,
    attempts integer not null,
    primary key (address, window_start)
);
create index login_windows_window_start on login_windows (window_start);
