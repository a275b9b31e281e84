"""The audit trail's hash chain: how one audit row is encoded and hashed, and how a chain
of rows is checked. Pure: no SQL, no HTTP (shared.audit writes, deploy.verify_audit reads).

Each service's audit rows form one chain, numbered ``seq`` 1, 2, 3, ... without gaps:

    row_hash(n) = SHA-256(row_hash(n - 1) || encode(row n))
    row_hash(0) = SHA-256("siui-audit-genesis:" || service)       (the genesis)

The genesis names the service, so a row copied from another service's chain does not fit.
``encode`` is canonical JSON (sorted keys, no spaces, ASCII escapes) of the row's fields
in ``FIELDS`` order, the time as integer microseconds since the epoch: one byte string per
row, whatever the driver or the database's own spelling. The row's ``id`` (the API's
paging key) is not hashed: ``seq`` is the row's place in the chain.

Changing any hashed field of a row, or its hash, breaks that row; deleting, inserting or
reordering rows breaks the row where it happens (a gap, or a hash that no longer follows);
cutting the tail shows against the chain head the database keeps, and against an external
checkpoint (a head logged earlier) when the head was rewritten too.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

#: The tables of the chain (its rows, its head): the service role may only read them.
CHAIN_TABLES = ("audit_log", "audit_chain")

#: The hashed fields, in encoding order (``seq`` first: a row's place is part of it).
FIELDS = ("seq", "at", "actor", "actor_cas", "cas", "action", "target_kind", "target_id",
          "status", "result", "address", "details")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_VERSION = b"siui-audit-v1\n"


def genesis(service: str) -> bytes:
    """The hash before a service's first row."""
    return hashlib.sha256(b"siui-audit-genesis:" + service.encode()).digest()


def storable_details(details: Any) -> Any:
    """``details`` as they will read back from jsonb, so the hash made before the insert
    matches the one computed from the stored row: a JSON round trip (tuples become lists,
    keys strings), and floats as their decimal text (jsonb re-spells 1e100 or -0.0)."""
    if details is None:
        return None
    return _no_floats(json.loads(json.dumps(details)))


def _no_floats(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [_no_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _no_floats(v) for k, v in value.items()}
    return value


def _microseconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("audit times carry an offset")
    return (at - _EPOCH) // _MICROSECOND


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc) - _EPOCH


def encode(row: dict[str, Any]) -> bytes:
    """The canonical bytes of one audit row (its ``FIELDS``; other keys are ignored)."""
    values = [row[name] for name in FIELDS]
    values[1] = _microseconds(values[1])
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def row_hash(previous: bytes, row: dict[str, Any]) -> bytes:
    """The hash of ``row`` following ``previous``."""
    return hashlib.sha256(previous + _VERSION + encode(row)).digest()


@dataclass(frozen=True)
class Head:
    """Where a chain ends: the last row's seq and hash (seq 0: the genesis)."""
    seq: int
    hash: bytes

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash.hex()}"


@dataclass(frozen=True)
class Break:
    """The first row where a chain fails to verify, and why."""
    seq: int
    id: int | None
    problem: str      # "hash mismatch", "gap", "missing", "head mismatch", "checkpoint mismatch"
    detail: str

    def __str__(self) -> str:
        row = f"seq {self.seq}" + (f" (id {self.id})" if self.id is not None else "")
        return f"{row}: {self.problem}: {self.detail}"


class ChainCheck:
    """Checks one service's chain a row at a time, in seq order, holding only the last
    hash (so a verifier streams millions of rows in constant memory).

    ``start`` is where the retained rows begin: the genesis, or the last row a retention
    purge removed (the database keeps its seq and hash as the chain's anchor).
    ``checkpoint``, a head logged earlier, must lie on the chain: a rewritten chain (head
    included) or a cut tail no longer passes through it."""

    def __init__(self, start: Head, checkpoint: Head | None = None) -> None:
        self.last = start
        self.checked = 0
        self.broken: Break | None = None
        self.checkpoint = checkpoint
        if checkpoint is not None and checkpoint.seq <= start.seq:
            # At the anchor it is compared with the anchor; before it, purged by retention.
            if checkpoint.seq == start.seq and checkpoint.hash != start.hash:
                self.broken = self._mismatch(checkpoint, None, start.hash)
            self.checkpoint = None

    def feed(self, row: dict[str, Any]) -> Break | None:
        """Check the next row (with ``id`` and ``row_hash`` besides ``FIELDS``); the first
        break found, then every later call returns it again."""
        if self.broken is not None:
            return self.broken
        expected_seq = self.last.seq + 1
        if row["seq"] != expected_seq:
            if row["seq"] > expected_seq:
                missing = (f"seq {expected_seq}" if row["seq"] == expected_seq + 1
                           else f"seq {expected_seq}..{row['seq'] - 1}")
                self.broken = Break(expected_seq, None, "gap",
                                    f"{missing} missing (after seq {self.last.seq}, "
                                    f"before id {row['id']} seq {row['seq']})")
            else:
                self.broken = Break(row["seq"], row["id"], "gap",
                                    f"seq {row['seq']} out of order after seq {self.last.seq}")
            return self.broken
        computed = row_hash(self.last.hash, row)
        stored = bytes(row["row_hash"]) if row["row_hash"] is not None else b""
        if computed != stored:
            self.broken = Break(row["seq"], row["id"], "hash mismatch",
                                f"stored {stored.hex() or 'nothing'}, the row's fields give "
                                f"{computed.hex()} (the row or its hash was changed)")
            return self.broken
        self.last = Head(row["seq"], computed)
        self.checked += 1
        if self.checkpoint is not None and self.checkpoint.seq == row["seq"]:
            if self.checkpoint.hash != computed:
                self.broken = self._mismatch(self.checkpoint, row["id"], computed)
            self.checkpoint = None
        return self.broken

    def finish(self, head: Head) -> Break | None:
        """After the last row: the rows must end where the database's chain head says,
        and reach the checkpoint."""
        if self.broken is not None:
            return self.broken
        if head.seq > self.last.seq:
            self.broken = Break(self.last.seq + 1, None, "missing",
                                f"the chain head is seq {head.seq} but the rows end at seq "
                                f"{self.last.seq}: the tail was cut")
        elif head != self.last:
            self.broken = Break(self.last.seq, None, "head mismatch",
                                f"the chain head says {head}, the rows end at {self.last}")
        elif self.checkpoint is not None:
            self.broken = Break(self.last.seq + 1, None, "missing",
                                f"checkpoint {self.checkpoint} is beyond the chain's end "
                                f"(seq {self.last.seq}): the tail was cut, head included")
        return self.broken

    @staticmethod
    def _mismatch(checkpoint: Head, row_id: int | None, found: bytes) -> Break:
        return Break(checkpoint.seq, row_id, "checkpoint mismatch",
                     f"checkpoint {checkpoint}, the chain has {found.hex()} there "
                     "(the chain was rewritten from there on)")


def parse_checkpoint(text: str) -> tuple[str, Head]:
    """``service:seq:hash`` (as the ``audit_chain_head`` log event gives them)."""
    try:
        service, seq, digest = text.split(":")
        head = Head(int(seq), bytes.fromhex(digest))
    except ValueError:
        raise ValueError(f"a checkpoint is service:seq:hexhash, got {text!r}") from None
    if head.seq < 0 or len(head.hash) != 32 or not service:
        raise ValueError(f"a checkpoint is service:seq:hexhash, got {text!r}")
    return service, head
