"""The OCSP answer on the wire, shared by both edges: the aiohttp handlers
(``responder.routes``) and the lean front that serves the port (``responder.front``).

What both must do alike lives here: one log entry and one count per CertID
(``record_answer``), which GETs are OCSP (``is_ocsp_get``), the RFC 5019 caching headers
and 304 (``get_reply``), and, for the front, the response bytes (``render``). This is
the hot path: metrics keep pre-resolved label children, dates are formatted once a second.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, formatdate
from functools import lru_cache

from prometheus_client import Counter, Histogram

from services.ocsp.log import LogEntry
from services.ocsp.responder.answering import Result
from shared.http.problems import problem

OCSP_RESPONSE_CT = "application/ocsp-response"

RESPONSES = Counter("siui_ocsp_responses_total", "OCSP answers, one per CertID (or per request when "
                    "no CertID could be looked up)", ["status", "cas"])
LATENCY = Histogram("siui_ocsp_response_seconds", "Time from the request's body to its answer",
                    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1))
_observe = LATENCY.observe
# Boulder's freshness metric: how old (now - thisUpdate) the answers we hand out are. With
# pre-signing it stays within half the validity; an answer older than that means the
# presigner is behind (or away) and alerts should say so before nextUpdate comes.
RESPONSE_AGE = Histogram("siui_ocsp_response_age_seconds", "Age (now minus thisUpdate) of each successful "
                         "answer served", buckets=(1, 10, 60, 300, 600, 900, 1200, 1800, 2400, 3000, 3600,
                                                   7200, 21600, 86400))
_observe_age = RESPONSE_AGE.observe
SOURCES = Counter("siui_ocsp_answers_by_source_total", "Successful answers by where their bytes came from: "
                  "presigned (shared by every responder), cache (this process's own), live (signed for "
                  "the request)", ["source"])
_sources = {source: SOURCES.labels(source) for source in ("presigned", "cache", "live")}
_counters: dict[tuple[str, str], object] = {}


def _count(status: str, cas: str | None) -> None:
    key = (status, cas or "")
    counter = _counters.get(key)
    if counter is None:  # .labels() costs more than the increment: resolve each pair once
        counter = _counters[key] = RESPONSES.labels(*key)
    counter.inc()


@lru_cache(maxsize=64)
def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


#: Log entries one request may write: a request may carry 100 CertIDs, and 100 rows from
#: one 7 kB request would let anyone multiply the log. The rest are summed up in one.
LOGGED_PER_REQUEST = 8


def record_answer(record: Callable[[LogEntry], None], client: str | None, result: Result, started: float) -> None:
    """One count per CertID answered and one log entry each, up to ``LOGGED_PER_REQUEST``
    per request (the last of them then says how many more the request asked about);
    never slows the answer down.

    ``record`` is the OCSP log's ``record``, ``client`` the caller's address and
    ``started`` the ``perf_counter()`` when the request's body was complete."""
    elapsed = time.perf_counter() - started
    _observe(elapsed)
    latency_ms = elapsed * 1000
    at = datetime.now(timezone.utc)
    if result.produced_at is not None:
        _observe_age((at - result.produced_at).total_seconds())
        source = _sources.get(result.source)
        if source is not None:
            source.inc()
    if not result.answers:
        _count(result.status, None)
        record(LogEntry(at, "ocsp", result.status, latency_ms, client))
        return
    successful = result.status == "successful"
    # The log knows no internalError (our fault, not the client's): the client was told
    # to come back, so it is logged as try_later with the cause in the detail.
    detail = "internal_error" if result.status == "internal_error" else None
    answers = result.answers
    for position, (cert_id, found) in enumerate(answers, start=1):
        entry = found.record
        if not successful:
            status = "try_later" if detail else result.status
        elif entry is None:
            status = "unknown"
        else:
            status = "revoked" if entry.status == "revoked" or entry.suspended else "good"
        cas = entry.cas if entry is not None else None
        _count(status, cas)
        if position > LOGGED_PER_REQUEST:
            continue
        note = detail
        if position == LOGGED_PER_REQUEST and len(answers) > LOGGED_PER_REQUEST:
            more = f"and {len(answers) - LOGGED_PER_REQUEST} more CertIDs in this request"
            note = f"{detail}; {more}" if detail else more
        record(LogEntry(at, "ocsp", status, latency_ms, client, cas,
                        entry.username if entry is not None else None, str(cert_id.serial),
                        found.issuer.issuer_id if found.issuer is not None else None,
                        entry.certificate_id if entry is not None else None, note))


def is_ocsp_get(tail: str) -> bool:
    """Whether a GET for the path ``tail`` (before any '?') may be an RFC 5019 request:
    /v1/ is our API, never base64 (a DER request's base64 starts with 'M')."""
    return not tail.lstrip("/").startswith("v1/")


def get_reply(result: Result, max_age: int, if_none_match: str | None) -> tuple[int, dict[str, str] | None]:
    """The HTTP status and RFC 5019 caching headers of a GET answer.

    (200, None) for an unsuccessful answer, which no cache may keep; 304 when
    ``if_none_match`` names the answer's ETag."""
    if result.status != "successful":
        return 200, None
    etag = result.etag or '"' + hashlib.sha256(result.der).hexdigest() + '"'
    now = datetime.now(timezone.utc).replace(microsecond=0)
    expires = min(result.next_update, now + timedelta(seconds=max_age))
    headers = {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Last-Modified": _http_date(result.produced_at),
        "Expires": _http_date(expires),
        "ETag": etag,
    }
    return (304 if _matches(if_none_match, etag) else 200), headers


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
    return any(candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(","))


_REASONS = {200: "OK", 304: "Not Modified", 500: "Internal Server Error"}
_date = [0, ""]


def _date_now() -> str:
    now = int(time.time())
    if now != _date[0]:  # formatted once a second, not once a request
        _date[0], _date[1] = now, formatdate(now, usegmt=True)
    return _date[1]


def render(version: str, status: int, headers: dict[str, str] | None, body: bytes | None, keep_alive: bool,
           content_type: str = OCSP_RESPONSE_CT) -> bytes:
    """One HTTP response; ``body`` None for a 304."""
    head = f"HTTP/{version} {status} {_REASONS[status]}\r\nDate: {_date_now()}\r\n"
    if body is not None:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    if headers:
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if version == "1.0":
        if keep_alive:
            head += "Connection: keep-alive\r\n"
    elif not keep_alive:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


def internal_error(version: str, keep_alive: bool) -> bytes:
    """The whole HTTP response the aiohttp edge gives for a bug of ours (problem+json 500),
    for the front to send."""
    response = problem(500, "Internal error", "The request could not be completed; it has been logged",
                       slug="internal-error", instance="/")
    return render(version, 500, None, response.body, keep_alive,
                  content_type=f"{response.content_type}; charset={response.charset}")
