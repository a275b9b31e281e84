"""The signers' remaining life as a metric: ``siui_ocsp_signer_not_after_seconds``.

The value is the certificate's notAfter as a Unix time (as node_exporter's and
blackbox's certificate expiries are), so it is set once, when a signer is loaded or
takes over, and Prometheus computes what is left (``... - time()``) at every
evaluation; nothing has to run at scrape time, which the workers' shared metric files
could not do anyway. Labels: ``issuer`` (``default`` for the service's own responder,
the issuing authority's name for a delegated signer) and ``signer`` (``current``,
``next`` while a rotation is pending, ``delegated``): a handful of series.
"""
from __future__ import annotations

import math

from prometheus_client import Gauge

from services.ocsp.responder.responses import ResponderIdentity

__all__ = ["DEFAULT_ISSUER", "SIGNER_NOT_AFTER", "publish_delegated", "publish_responder"]

DEFAULT_ISSUER = "default"

# livemax: every worker holds the same signers; a dead worker's value is not counted.
SIGNER_NOT_AFTER = Gauge("siui_ocsp_signer_not_after_seconds", "notAfter (Unix time) of each certificate "
                         "that signs or will sign OCSP answers", ["issuer", "signer"], multiprocess_mode="livemax")


def publish_responder(current: ResponderIdentity, following: ResponderIdentity | None) -> None:
    """The service's own signers; a next one gone (it took over) reads NaN, which no
    comparison matches: the workers' shared files cannot forget a series."""
    SIGNER_NOT_AFTER.labels(DEFAULT_ISSUER, "current").set(current.not_after.timestamp())
    SIGNER_NOT_AFTER.labels(DEFAULT_ISSUER, "next").set(
        following.not_after.timestamp() if following is not None else math.nan)


def publish_delegated(issuer_name: str, signer: ResponderIdentity | None) -> None:
    """An issuer's delegated signer (NaN once it is withdrawn)."""
    SIGNER_NOT_AFTER.labels(issuer_name, "delegated").set(
        signer.not_after.timestamp() if signer is not None else math.nan)
