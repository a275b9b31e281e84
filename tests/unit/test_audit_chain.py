"""The audit chain's encoding and checking (shared.audit_chain): any change to a row, any
deletion, insertion or reordering breaks verification at the row where it happens."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.audit_chain import (FIELDS, ChainCheck, Head, encode, genesis, parse_checkpoint, row_hash,
                                storable_details)

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | texts,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                           max_leaves=8)
entries = st.fixed_dictionaries({
    "at": st.integers(0, 10**12).map(lambda us: T0 + timedelta(microseconds=us)),
    "actor": texts, "actor_cas": texts, "cas": st.none() | texts, "action": texts,
    "target_kind": st.none() | texts, "target_id": st.none() | texts,
    "status": st.integers(100, 599), "result": texts, "address": st.none() | texts,
    "details": st.none() | st.dictionaries(texts, json_values, max_size=3)})


def chain(items: list[dict], service: str = "keygen") -> list[dict]:
    """Rows as the database holds them after appending ``items`` in order."""
    rows, previous = [], genesis(service)
    for n, item in enumerate(items, start=1):
        row = {**item, "seq": n, "id": 100 + n, "details": storable_details(item["details"])}
        row["row_hash"] = previous = row_hash(previous, row)
        rows.append(row)
    return rows


def check(rows: list[dict], service: str = "keygen", head: Head | None = None,
          checkpoint: Head | None = None, start: Head | None = None):
    checker = ChainCheck(start or Head(0, genesis(service)), checkpoint)
    for row in rows:
        checker.feed(row)
    if head is None:
        head = Head(rows[-1]["seq"], rows[-1]["row_hash"]) if rows else Head(0, genesis(service))
    return checker.finish(head), checker


def entry(n: int = 0, **changes) -> dict:
    return {"at": T0 + timedelta(seconds=n), "actor": "admin", "actor_cas": "CNAS", "cas": "B",
            "action": "POST /v1/providers", "target_kind": "provider", "target_id": str(n),
            "status": 201, "result": "ok", "address": "127.0.0.1", "details": {"n": n}, **changes}


def test_an_intact_chain_verifies_to_its_head():
    rows = chain([entry(n) for n in range(5)])
    broken, checker = check(rows)
    assert broken is None and checker.checked == 5
    assert checker.last == Head(5, rows[-1]["row_hash"])


def test_an_empty_chain_is_its_genesis():
    broken, checker = check([])
    assert broken is None and checker.checked == 0


def test_the_genesis_names_the_service():
    rows = chain([entry(1)], service="users")
    broken, _ = check(rows, service="certs")
    assert broken is not None and broken.problem == "hash mismatch" and broken.seq == 1


def test_the_encoding_is_canonical_json_of_the_fields_in_order():
    assert encode({**entry(0), "seq": 7}) == (b'[7,1796205600000000,"admin","CNAS","B","POST /v1/providers",'
                                              b'"provider","0",201,"ok","127.0.0.1",{"n":0}]')
    row = {**entry(0), "seq": 7}
    assert encode(row).startswith(b'[7,1796205600000000,"admin",')
    assert encode({**row, "details": {"b": 1, "a": 2}}) == encode({**row, "details": {"a": 2, "b": 1}})
    assert encode({**row, "cas": None}) != encode({**row, "cas": ""})


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        encode({**entry(0), "seq": 1, "at": datetime(2026, 1, 1)})


def test_details_are_stored_as_they_read_back():
    assert storable_details({"a": (1, 2), 3: 1.5, "b": [1e100]}) == {"a": [1, 2], "3": "1.5", "b": ["1e+100"]}
    assert storable_details(None) is None


@settings(max_examples=150, deadline=None)
@given(st.lists(entries, min_size=1, max_size=6), st.data())
def test_any_change_to_any_field_breaks_that_row(items, data):
    rows = chain(items)
    victim = data.draw(st.integers(0, len(rows) - 1))
    field = data.draw(st.sampled_from([*FIELDS[1:], "row_hash"]))
    row = rows[victim]
    if field == "at":
        changed = row["at"] + timedelta(microseconds=data.draw(st.integers(1, 10**6)))
    elif field == "status":
        changed = row["status"] + data.draw(st.integers(1, 50))
    elif field == "row_hash":
        changed = bytes([row["row_hash"][0] ^ 1]) + row["row_hash"][1:]
    elif field == "details":
        changed = {**(row["details"] or {}), "added": True}
    else:
        changed = (row[field] or "") + "x"
    rows[victim] = {**row, field: changed}
    broken, _ = check(rows, head=Head(len(items), chain(items)[-1]["row_hash"]))
    assert broken is not None
    assert (broken.seq, broken.id, broken.problem) == (row["seq"], row["id"], "hash mismatch")


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, min_size=2, max_size=6), st.data())
def test_a_deleted_row_is_named_as_the_gap(items, data):
    rows = chain(items)
    head = Head(rows[-1]["seq"], rows[-1]["row_hash"])
    victim = data.draw(st.integers(0, len(rows) - 1))
    gone = rows.pop(victim)
    broken, _ = check(rows, head=head)
    assert broken is not None and broken.seq == gone["seq"]
    assert broken.problem == ("missing" if victim == len(items) - 1 else "gap")


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, min_size=2, max_size=6), st.data())
def test_swapped_rows_break_at_the_first_of_them(items, data):
    rows = chain(items)
    i = data.draw(st.integers(0, len(rows) - 2))
    # Their places swapped too (seq kept in order), as an editor would to hide it.
    a, b = rows[i], rows[i + 1]
    rows[i] = {**b, "seq": a["seq"], "id": a["id"]}
    rows[i + 1] = {**a, "seq": b["seq"], "id": b["id"]}
    if encode(rows[i]) == encode(a):
        return  # two identical entries: nothing was reordered
    broken, _ = check(rows)
    assert broken is not None and broken.seq == a["seq"] and broken.problem == "hash mismatch"


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, min_size=1, max_size=6), entries, st.data())
def test_an_inserted_row_breaks_where_it_was_put(items, extra, data):
    rows = chain(items)
    at = data.draw(st.integers(0, len(rows)))
    forged = {**extra, "seq": at + 1, "id": 999, "details": storable_details(extra["details"]),
              "row_hash": row_hash(rows[at - 1]["row_hash"] if at else genesis("keygen"), {**extra, "seq": at + 1})}
    # Renumbered after it, as an editor would.
    rows = rows[:at] + [forged] + [{**r, "seq": r["seq"] + 1} for r in rows[at:]]
    broken, _ = check(rows, head=Head(len(items), chain(items)[-1]["row_hash"]))
    assert broken is not None
    if at < len(items):
        assert broken.seq == at + 2 and broken.problem == "hash mismatch"
    else:  # appended at the tail without moving the head
        assert broken.problem == "head mismatch"


def test_a_cut_tail_shows_against_the_head():
    rows = chain([entry(n) for n in range(4)])
    broken, _ = check(rows[:2], head=Head(4, rows[-1]["row_hash"]))
    assert (broken.seq, broken.problem) == (3, "missing")


def test_a_cut_tail_with_its_head_rewritten_shows_against_a_checkpoint():
    rows = chain([entry(n) for n in range(4)])
    checkpoint = Head(3, rows[2]["row_hash"])
    assert check(rows, checkpoint=checkpoint)[0] is None
    broken, _ = check(rows[:2], checkpoint=checkpoint)
    assert (broken.seq, broken.problem) == (3, "missing")


def test_a_rewritten_chain_shows_against_a_checkpoint():
    rows = chain([entry(n) for n in range(4)])
    checkpoint = Head(3, rows[2]["row_hash"])
    rewritten = chain([entry(n, actor="someone-else" if n == 1 else "admin") for n in range(4)])
    assert check(rewritten)[0] is None  # consistent by itself...
    broken, _ = check(rewritten, checkpoint=checkpoint)
    assert (broken.seq, broken.id, broken.problem) == (3, 103, "checkpoint mismatch")  # ...but not with the log


def test_a_purged_prefix_verifies_from_the_anchor():
    rows = chain([entry(n) for n in range(5)])
    anchor = Head(2, rows[1]["row_hash"])
    assert check(rows[2:], start=anchor)[0] is None
    assert check(rows[2:], start=anchor, checkpoint=Head(1, rows[0]["row_hash"]))[0] is None  # purged
    assert check(rows[2:], start=anchor, checkpoint=anchor)[0] is None
    broken, _ = check(rows[3:], start=anchor)
    assert (broken.seq, broken.problem) == (3, "gap")


def test_checkpoints_parse():
    digest = bytes(range(32))
    assert parse_checkpoint(f"keygen:12:{digest.hex()}") == ("keygen", Head(12, digest))
    assert str(Head(12, digest)) == f"12:{digest.hex()}"
    for bad in ("keygen:12", "keygen:x:00", f"keygen:12:{digest.hex()[:-2]}", f":1:{digest.hex()}"):
        with pytest.raises(ValueError):
            parse_checkpoint(bad)
