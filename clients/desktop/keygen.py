"""The activation call: ``POST <keygen>/v1/activations {"license_serial","cas"}``.

keygen answers 200 ``{"external_user","provider":{"cui","name"},"cas"}``; 422 for a
serial that fails its own check (the client checks first, so only a client out of date
sees it); 403, one generic answer, for a key that is not this house's; 429 with
``Retry-After`` when failures repeat (said with the wait; the person retries, nothing
here retries on its own).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from clients.desktop.activation import Activation, ActivationStore
from clients.desktop.transport import Reply, TransportError, post_json
from shared.config import service_url

PATH = "/v1/activations"


class ActivationRefused(Exception):
    """The house did not activate us; ``key``/``params`` name the message to show."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    @property
    def retype(self) -> bool:
        """Whether the provider fixes it by typing the serial again (the house refused
        the serial) rather than by trying again later (unreachable, throttled)."""
        return self.key in ("activation_forbidden", "activation_invalid")


def default_server(env: Mapping[str, str] | None = None) -> str:
    """keygen's URL: ``$SIUI_KEYGEN_URL``, else 127.0.0.1 on ``$SIUI_KEYGEN_PORT`` (8101)."""
    return service_url(os.environ if env is None else env, "keygen")


def request_activation(server: str, serial: str, cas: str, *,
                       post: Callable[..., Reply] = post_json,
                       now: datetime | None = None) -> Activation:
    """Ask the house to activate ``serial`` (already checked offline) at house ``cas``.

    Returns the :class:`Activation` to store; raises :class:`ActivationRefused`.
    ``post`` is injectable so the answers can be tested without a server.
    """
    url = server.rstrip("/") + PATH
    try:
        reply = post(url, {"license_serial": serial, "cas": cas})
    except TransportError as exc:
        raise ActivationRefused("activation_unreachable", server=server, detail=exc.detail) from None
    if reply.status == 200 and reply.body.get("external_user") and reply.body.get("cas"):
        return Activation.from_answer(reply.body, serial, server, now)
    if reply.status == 403:
        raise ActivationRefused("activation_forbidden")
    if reply.status in (400, 422):
        raise ActivationRefused("activation_invalid", detail=_problem_detail(reply.body))
    if reply.status == 429:
        raise ActivationRefused("activation_throttled", seconds=reply.retry_after(60))
    raise ActivationRefused("activation_failed", status=reply.status)


def activate_and_save(store: ActivationStore, server: str, serial: str, cas: str, *,
                      request: Callable[..., Activation] = request_activation,
                      ) -> tuple[Activation, Path]:
    """The last step of every *Activare* (terminal, script, window): ask, then keep the
    activation; a refusal raises :class:`ActivationRefused` and keeps the old one."""
    activation = request(server, serial, cas)
    return activation, store.save(activation)


def _problem_detail(body: Mapping) -> str:
    """A problem document's detail, with the fields it names."""
    detail = str(body.get("detail") or body.get("title") or "")
    errors = body.get("errors")
    if isinstance(errors, Mapping) and errors:
        named = "; ".join(f"{k}: {v}" for k, v in errors.items())
        return f"{detail} ({named})" if detail else named
    return detail or "?"
