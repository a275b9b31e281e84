"""One certificate, several houses (issue 15): the OCSP answer across the houses that
registered it. Pure; no I/O.

A provider working with houses B and CJ has one qualified certificate registered for its
user in each (``<CUI>_CAS-B``, ``<CUI>_CAS-CJ``); each house suspends and reinstates its
own record, and the online channel decides per user. OCSP has one answer per
certificate, so the records are combined:

* **revoked** when it is revoked anywhere (by a house, or by its issuing authority): a
  revocation says the certificate itself must not be trusted (its key lost, its holder
  gone), which is true for every relying party, not only for one house's SIUI access;
* otherwise **good** while at least one house has it registered and not suspended: a
  suspension is one house's decision about its own contract with the provider, and
  another house's relying parties (its pharmacies checking a prescription's signature)
  must not see a certificate on hold because of it;
* otherwise (every house has suspended it) **revoked / certificateHold**, from the latest
  suspension: the moment it stopped being good anywhere.

The combined record carries the deciding house's user (the first in name order among
those giving the answer), which the OCSP log attributes the query to.
"""
from __future__ import annotations

from collections.abc import Sequence

from services.ocsp.responder.registry import CertificateRecord


def combined(records: Sequence[CertificateRecord]) -> CertificateRecord | None:
    """The one record OCSP answers from; None when no house has the certificate."""
    if not records:
        return None
    changed = max((r.changed_at for r in records if r.changed_at is not None), default=None)
    revoked = [r for r in records if r.status == "revoked"]
    if revoked:
        # The earliest revocation: from then on nobody should have trusted it.
        chosen = min(revoked, key=lambda r: (r.revoked_at, r.username))
    else:
        good = [r for r in records if not r.suspended]
        if good:
            chosen = min(good, key=lambda r: r.username)
        else:
            chosen = max(records, key=lambda r: (r.suspended_at, r.username))
    return chosen.replace(changed_at=changed)

