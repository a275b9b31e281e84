"""TLS session tickets that every process of a service accepts: the ticket key set on an
``ssl.SSLContext`` from a secret they share.

Why: with TLS 1.3 a reconnecting client resumes its session from a ticket the server
gave it, skipping the certificate exchange and its signatures (several times cheaper
than a full handshake). OpenSSL encrypts tickets with a random key per context, so a
ticket from one worker process (SO_REUSEPORT hands each connection to any of them) or
from before a restart would be refused, and the reconnect storm after a restart would
be all full handshakes. Python's ``ssl`` has no call for the key
(``SSL_CTX_set_tlsext_ticket_keys``), so it is made through ``ctypes`` on the very
OpenSSL library the ``ssl`` module uses, with checks that the context found is that
one before anything is written; where any check fails nothing is set and each
process keeps its own key (resumption then works only with the same process).

The secret's holder can read tickets, hence their resumption secrets; OpenSSL's server
still requires an (EC)DHE exchange on resumption (psk_dhe_ke), so recorded traffic stays
secret even then. Keys are rotated daily by the caller (``ticket_key``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import ssl

from shared.logging import get_logger

log = get_logger(__name__)

#: SSL_CTRL_SET_TLSEXT_TICKET_KEYS / _GET_: name (16) + HMAC key (32) + AES key (32).
_SET_KEYS, _GET_KEYS, KEY_BYTES = 59, 58, 80
#: OpenSSL_version(OPENSSL_VERSION): the text ssl.OPENSSL_VERSION also shows.
_OPENSSL_VERSION = 0


def ticket_key(secret: bytes, period: int) -> bytes:
    """The 80 bytes of ticket key for ``period`` (e.g. the UTC day number): a key name
    and two keys, derived one-way from ``secret`` so all processes agree."""
    if len(secret) < 32:
        raise ValueError("the ticket secret must be at least 32 bytes")
    label = f"siui tls ticket key {period}".encode()
    blocks = [hmac.new(secret, label + bytes([i]), hashlib.sha256).digest() for i in range(3)]
    return b"".join(blocks)[:KEY_BYTES]


def _libssl():
    name = ctypes.util.find_library("ssl")
    lib = ctypes.CDLL(name or "libssl.so.3")
    lib.SSL_CTX_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    lib.SSL_CTX_get_options.restype = ctypes.c_uint64
    lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    lib.OpenSSL_version.restype = ctypes.c_char_p
    lib.OpenSSL_version.argtypes = [ctypes.c_int]
    return lib


def _ctx_pointer(context: ssl.SSLContext) -> int | None:
    # CPython's PySSLContext starts with its object header, then the SSL_CTX pointer.
    return ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value


def set_ticket_keys(context: ssl.SSLContext, key: bytes) -> bool:
    """Make ``context`` encrypt and accept tickets with ``key`` (``ticket_key``); True
    when set and read back, False (nothing touched) where this build cannot."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a ticket key is {KEY_BYTES} bytes")
    try:
        lib = _libssl()
        if lib.OpenSSL_version(_OPENSSL_VERSION).decode() != ssl.OPENSSL_VERSION:
            log.warning("tls_ticket_keys_unavailable", why="another OpenSSL than the ssl module's")
            return False
        pointer = _ctx_pointer(context)
        # The pointer must be this context's: its options are what Python says they are
        # (a toggled option makes a false match all but impossible).
        if not pointer or lib.SSL_CTX_get_options(pointer) != context.options:
            log.warning("tls_ticket_keys_unavailable", why="context layout not recognised")
            return False
        context.options ^= ssl.OP_NO_TICKET
        toggled = lib.SSL_CTX_get_options(pointer) == context.options
        context.options ^= ssl.OP_NO_TICKET
        if not toggled:
            log.warning("tls_ticket_keys_unavailable", why="context layout not recognised")
            return False
        given = ctypes.create_string_buffer(key, KEY_BYTES)
        if lib.SSL_CTX_ctrl(pointer, _SET_KEYS, KEY_BYTES, given) != 1:
            return False
        read = ctypes.create_string_buffer(KEY_BYTES)
        return lib.SSL_CTX_ctrl(pointer, _GET_KEYS, KEY_BYTES, read) == 1 and read.raw == key
    except (OSError, AttributeError, ValueError) as exc:  # no libssl, or a symbol missing
        log.warning("tls_ticket_keys_unavailable", why=repr(exc))
        return False
