"""The JSON the API answers with, built from query rows. Serials are decimal strings
(20 octets are beyond JSON's safe integers) with their hex beside them."""
from __future__ import annotations

from typing import Any

from asyncpg import Record

from shared.events import iso

from shared.usernames import house_schema, org_unit

from .certificates import SUSPENDED
from .pki import serial_hex, to_pem


def issuer_json(row: Record, *, with_certificate: bool = False) -> dict[str, Any]:
    """An issuing authority ("Autoritate emitenta")."""
    serial = int(row["serial"])
    body = {
        "id": str(row["id"]),
        "subject_dn": row["subject_dn"],
        "serial": str(serial),
        "serial_hex": serial_hex(serial),
        "not_before": iso(row["not_before"]),
        "not_after": iso(row["not_after"]),
        "hashes": {
            "sha1": {"name": row["name_sha1"].hex(), "key": row["key_sha1"].hex()},
            "sha256": {"name": row["name_sha256"].hex(), "key": row["key_sha256"].hex()},
        },
        "certificate_url": f"/v1/issuers/{row['id']}/certificate.pem",
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "updated_at": iso(row["updated_at"]),
        "updated_by": row["updated_by"],
        # The authority's own status (its CRLs): where, when last fetched, what the newest
        # verified CRL covers, and the last failure (null after a success).
        "crl_urls": list(row["crl_urls"]),
        "status_checked_at": iso(row["status_checked_at"]),
        "crl_url": row["crl_url"],
        "crl_this_update": iso(row["crl_this_update"]),
        "crl_next_update": iso(row["crl_next_update"]),
        "status_error": row["status_error"],
        # What the national Trusted List says of it (null: registered by hand, never listed).
        "trusted_list": None if row["tl_imported_at"] is None else {
            "tsp_name": row["tl_tsp_name"], "service_name": row["tl_service_name"],
            "status": row["tl_status"], "imported_at": iso(row["tl_imported_at"]),
            "withdrawn_at": iso(row["tl_withdrawn_at"])},
    }
    if with_certificate:
        body["certificate_pem"] = to_pem(row["certificate_der"])
    return body


def certificate_json(row: Record) -> dict[str, Any]:
    """A user certificate as listed, and as answered on registration."""
    serial = int(row["serial"])
    schema, unit = house_schema(row["cas"]), org_unit(row["cas"])
    return {
        "id": str(row["id"]),
        "username": row["username"],
        "cas": row["cas"],
        "provider_cui": row["provider_cui"],
        "provider_code": row["provider_code"],
        "provider_name": row["provider_name"],
        "schema": row["schema"] or schema,
        "org_unit": row["org_unit"] or unit,
        **_as_issued(row, serial),
        "status": row["status"],
        "suspended": row["status"] == SUSPENDED,
        "suspended_at": iso(row["suspended_at"]),
        "revoked_at": iso(row["revoked_at"]),
        "revocation_reason": row["revocation_reason"],
        "last_used_at": iso(row["last_used_at"]),
        "created_at": iso(row["created_at"]),
        "created_by": row["created_by"],
        "updated_at": iso(row["updated_at"]),
        # What the issuing authority says (its CRL), beside SIUI's own ``status``.
        "issuer_status": row["issuer_status"],
        "issuer_revoked_at": iso(row["issuer_revoked_at"]),
        "issuer_revocation_reason": row["issuer_revocation_reason"],
        "issuer_checked_at": iso(row["issuer_checked_at"]),
    }


def _as_issued(row: Record, serial: int) -> dict[str, Any]:
    """What a certificate says of itself, as every record of one shows it (a registered
    certificate, a renewal presented)."""
    return {"serial": str(serial), "serial_hex": serial_hex(serial), "issuer": row["issuer_dn"],
            "issuer_id": str(row["issuer_id"]), "subject": row["subject"],
            "not_before": iso(row["not_before"]), "not_after": iso(row["not_after"])}


def certificate_detail_json(row: Record, history: list[Record]) -> dict[str, Any]:
    """The seed's detail screen: the listing's fields, the certificate file, the history."""
    der = row["certificate_der"]
    return {
        **certificate_json(row),
        "certificate_pem": to_pem(der) if der is not None else None,
        "issuer_certificate_url": f"/v1/issuers/{row['issuer_id']}/certificate.pem",
        "history": [{"at": iso(h["at"]), "actor": h["actor"], "action": h["action"],
                     "reason": h["reason"], "comment": h["comment"]} for h in history],
    }


def renewal_json(row: Record) -> dict[str, Any]:
    """A renewal (issue 15): the new certificate as read from itself, and beside it the
    registered one it follows (``replaced``), so a house compares the two at a glance."""
    serial, old_serial = int(row["serial"]), int(row["old_serial"])
    return {
        "id": str(row["id"]),
        "username": row["username"],
        "cas": row["cas"],
        "provider_cui": row["provider_cui"],
        **_as_issued(row, serial),
        "replaces": str(row["replaces"]),
        "presented_at": iso(row["presented_at"]),
        "presented_from": row["presented_from"],
        "last_presented_at": iso(row["last_presented_at"]),
        "status": row["status"],
        "decided_at": iso(row["decided_at"]),
        "decided_by": row["decided_by"],
        "reason": row["reason"],
        "certificate_id": str(row["certificate_id"]) if row["certificate_id"] else None,
        "replaced": {"id": str(row["replaces"]), "serial": str(old_serial), "serial_hex": serial_hex(old_serial),
                     "issuer": row["old_issuer_dn"], "subject": row["old_subject"],
                     "not_before": iso(row["old_not_before"]), "not_after": iso(row["old_not_after"]),
                     "status": row["old_status"]},
    }
