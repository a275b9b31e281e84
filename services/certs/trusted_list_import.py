"""Importing the national Trusted List, in two steps CNAS takes: upload (the list verified
and read, kept, its difference from the registered issuers shown) and apply (in one
transaction: new services registered as issuing authorities, changed ones updated,
withdrawn ones flagged). Applying recomputes the difference against the issuers as they
are then, so applying the same list twice changes nothing the second time.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared import errors
from shared.events import iso

from . import operations, queries
from .trusted_list import TrustedList, diff, listed_from_json


async def upload(conn, trusted: TrustedList, actor: str, at: datetime) -> dict[str, Any]:
    """Keep a verified list for applying; what applying it now would change."""
    row = await queries.insert_trusted_list_import(
        conn, uuid.uuid4(), sequence_number=trusted.sequence_number, territory=trusted.territory,
        issued_at=trusted.issued_at, next_update=trusted.next_update, digest=trusted.digest,
        services=[s.to_json() for s in trusted.services], actor=actor, at=at)
    changes = diff(trusted, await queries.list_issuers(conn, None))
    return {**_identity(row), **changes.to_json()}


async def apply(conn, import_id: uuid.UUID | None, actor: str, at: datetime) -> dict[str, Any]:
    """Apply an uploaded list (the newest when no id is given): the issuers added, updated
    and flagged. In the caller's transaction: all of it, or none."""
    row = await queries.lock_trusted_list_import(conn, import_id)
    if row is None:
        raise errors.NotFound("no Trusted List has been uploaded" if import_id is None else "no such import")
    trusted = TrustedList(row["sequence_number"], row["territory"], row["issued_at"], row["next_update"],
                          bytes(row["digest"]), tuple(listed_from_json(s) for s in row["services"]))
    changes = diff(trusted, await queries.list_issuers(conn, None))
    added, updated, flagged = [], [], []
    for service in changes.new:
        issuer = await operations.register_issuer(conn, service.facts, actor, at)
        await _listed(conn, issuer["id"], service, at)
        added.append({"issuer_id": str(issuer["id"]), "subject_dn": issuer["subject_dn"],
                      "service_name": service.service_name})
    for issuer, service, what in changes.changed:
        if "certificate" in what:
            await operations.replace_issuer_certificate(conn, issuer["id"], service.facts, actor, at)
        await _listed(conn, issuer["id"], service, at)
        updated.append({"issuer_id": str(issuer["id"]), "subject_dn": issuer["subject_dn"], "changes": what})
    for issuer, why in changes.withdrawn:
        status = next((s.status for s in trusted.services if s.facts.dn_key == issuer["dn_key"]), None)
        await queries.flag_issuer_withdrawn(conn, issuer["id"], status=status, at=at)
        flagged.append({"issuer_id": str(issuer["id"]), "subject_dn": issuer["subject_dn"], "reason": why})
    result = {"added": added, "updated": updated, "flagged": flagged, "unchanged": changes.unchanged}
    await queries.mark_trusted_list_applied(conn, row["id"], result, actor, at)
    return {**_identity(row), **result}


async def _listed(conn, issuer_id: uuid.UUID, service, at: datetime) -> None:
    await queries.set_issuer_listing(conn, issuer_id, tsp_name=service.tsp_name,
                                     service_name=service.service_name, status=service.status, at=at)


async def last_applied(conn) -> dict[str, Any] | None:
    """The list the issuers follow now: which one, when and by whom it was applied."""
    row = await queries.latest_applied_trusted_list(conn)
    if row is None:
        return None
    return {**_identity(row), "uploaded_at": iso(row["uploaded_at"]), "uploaded_by": row["uploaded_by"],
            "applied_at": iso(row["applied_at"]), "applied_by": row["applied_by"]}


def _identity(row) -> dict[str, Any]:
    return {"import_id": str(row["id"]), "sequence_number": row["sequence_number"],
            "territory": row["territory"], "issued_at": iso(row["issued_at"]),
            "next_update": iso(row["next_update"]), "sha256": bytes(row["digest"]).hex()}
