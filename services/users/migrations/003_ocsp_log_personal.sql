-- The OCSP log's personal data (client addresses, provider accounts) is for the staff
-- who answer for the house's accounts and act on them: its admins, CNAS's, and its
-- operators (who issue the keys and suspend the certificates, and take the provider's
-- call when a desktop is refused). Viewers, who watch the service work, see the log
-- masked (services/ocsp/log/privacy.py).
insert into role_rights (role, right_name)
select role, 'ocsp-log:personal' from unnest(array['national-admin', 'house-admin', 'house-operator']) as role
on conflict do nothing;
