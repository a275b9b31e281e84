"""*Conectare online* set up once for the terminal and the window: the provider's
certificate (PEM + key, or PKCS#12) read and checked, the TLS context that presents it,
and the online channel that reads the activation afresh at every connect."""
from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clients.desktop.activation import ActivationStore
from clients.desktop.online import OnlineChannel
from clients.desktop.tls import (AskPassphrase, Credentials, CredentialsError, client_context,
                                 load_p12, load_pem)
from shared.config import service_port


@dataclass(frozen=True)
class CertificateFiles:
    """Where the provider's certificate is: a PKCS#12 bundle, or a PEM certificate and
    its key."""

    p12: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        if not self.p12 and not (self.cert and self.key):
            raise CredentialsError("credentials_unusable",
                                   detail="a PKCS#12 file, or a certificate and its key")


def load_credentials(files: CertificateFiles, ask: AskPassphrase) -> Credentials:
    """Read and check the certificate and key (``ask`` for a passphrase if needed)."""
    if files.p12:
        return load_p12(files.p12, ask)
    return load_pem(files.cert, files.key, ask)


def open_channel(store: ActivationStore, credentials: Credentials, *, server: str,
                 ca: Path | None, language: str) -> OnlineChannel:
    """The online channel of ``server`` with these credentials; the activation is read
    from ``store`` before each connect, so a new activation takes effect without a
    restart. Raises :class:`CredentialsError` when the TLS library refuses them."""
    context: ssl.SSLContext = client_context(credentials, ca)
    return OnlineChannel(server, context, activation=lambda: store.load()[0], language=language)


def default_online_server(env: Mapping[str, str] | None = None) -> str:
    """``https://127.0.0.1:$SIUI_OCSP_TLS_PORT`` (8443): the dev stack's channel."""
    return f"https://127.0.0.1:{service_port(os.environ if env is None else env, 'ocsp_tls')}"
