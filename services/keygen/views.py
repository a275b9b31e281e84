"""Providers between their three forms: the validated record (``providers.validate_provider``),
the table's columns, and the JSON the API answers. Pure functions."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from shared.usernames import external_username
from services.keygen.providers import PROVIDER_FIELDS, fold

_LIKE_SPECIALS = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def to_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """The table's columns for a validated record."""
    columns = {f: record[f] for f in PROVIDER_FIELDS if f != "legal_representative"}
    rep = record.get("legal_representative") or {}
    columns["legal_representative_name"] = rep.get("name")
    columns["legal_representative_cnp"] = rep.get("cnp")
    columns["search_text"] = fold(" ".join(filter(None, (record["name"], record["cui"],
                                                         record["code"]))))
    return columns


def to_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The validated record a providers row holds (what ``apply_patch`` merges over)."""
    record = {f: row[f] for f in PROVIDER_FIELDS if f != "legal_representative"}
    record["legal_representative"] = (
        {"name": row["legal_representative_name"], "cnp": row["legal_representative_cnp"]}
        if row["legal_representative_name"] is not None else None)
    return record


def search_pattern(q: str | None) -> str | None:
    """A LIKE pattern (escape ``\\``) finding ``q`` anywhere in name, CUI or code,
    whatever its case and diacritics."""
    if not q:
        return None
    return "%" + fold(q).translate(_LIKE_SPECIALS) + "%"


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"old", "new"}}`` for every field that differs, as JSON values."""
    return {f: {"old": _json(before.get(f)), "new": _json(after.get(f))}
            for f in PROVIDER_FIELDS if before.get(f) != after.get(f)}


def key_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of a provider's key history: its id, who issued it (Generare, or a reset
    when ``reset``) and when, who replaced it by a reset and when. Never the digest, nor
    any part of the serial (a part would shorten a guess at it)."""
    return {"key_id": str(row["id"]), "reset": row["reset"], "issued_at": _json(row["issued_at"]),
            "issued_by": row["issued_by"], "replaced_at": _json(row["replaced_at"]),
            "replaced_by": row["replaced_by"],
            "status": "current" if row["replaced_at"] is None else "replaced"}


def provider_json(row: Mapping[str, Any], keys: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The detail of one provider: every field of the form, its current key and the key
    history (oldest first)."""
    history = [key_json(k) for k in keys]
    current = next((k for k in history if k["replaced_at"] is None), None)
    body = {"id": str(row["id"]),
            **{f: _json(v) for f, v in to_record(row).items()},
            "has_key": current is not None,
            "key_id": current and current["key_id"],
            "key_issued_at": current and current["issued_at"],
            # The external user exists from the first key on (users makes it from KeyIssued).
            "external_user": external_username(row["cui"], row["cas"]) if history else None,
            "keys": history}
    for name in ("created_at", "created_by", "updated_at", "updated_by"):
        body[name] = _json(row[name])
    return body


def list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the providers list."""
    return {"id": str(row["id"]), "cas": row["cas"], "cui": row["cui"], "code": row["code"],
            "name": row["name"], "org_type": row["org_type"], "locality": row["locality"],
            "valid_from": _json(row["valid_from"]), "valid_to": _json(row["valid_to"]),
            "has_key": row["key_id"] is not None,
            "key_id": str(row["key_id"]) if row["key_id"] is not None else None,
            "key_issued_at": _json(row["key_issued_at"])}


def history_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"at": _json(row["at"]), "by": row["by"], "action": row["action"],
            "changes": row["changes"]}


def _json(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value
