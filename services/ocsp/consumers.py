"""The queues the ocsp service consumes, and which feature handles each event type
(handed to ``shared.service.add_platform``, like every service's)."""
from __future__ import annotations

from services.ocsp import online, state
from shared.service import Consumers

CONSUMERS: Consumers = {
    # certs' issuers and certificates → the tables every process's registry follows
    "ocsp.certs": state.HANDLERS,
    # keygen's keys and users' external users → the online channel's key table
    "ocsp.keys": online.HANDLERS,
    # certs' rejected renewals → the online channel's refusals (issue 15)
    "ocsp.renewals": online.RENEWAL_HANDLERS,
}
