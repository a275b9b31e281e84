-- When each replaced key stopped being current (issue 15): the online channel's
-- key_replaced refusal says when the house reset the key. Parallel to previous_digests
-- (same order, same length); rows kept before this migration get "not known" (null)
-- for the keys they already remember, and the message then gives no date.
alter table external_user_keys add column previous_replaced_at timestamptz[] not null default '{}';
update external_user_keys
   set previous_replaced_at = array_fill(null::timestamptz, array[cardinality(previous_digests)])
 where cardinality(previous_digests) > 0;
