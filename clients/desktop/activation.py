"""*Activare*, the provider's side: reading the licence serial a person types, choosing
the insurance house, and the local activation file. No network here.

The activation file keeps the external user, the house, the provider and the licence
serial itself: the online channel takes the serial as the external user's password on
every connection, so the client must keep it. It lives on the provider's own machine,
in a directory only the user can enter (0700), in a file only the user can read (0600),
written whole or not at all (a temporary file renamed over the old one).
"""
from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from shared import license
from shared.houses import HOUSES, House, UnknownHouse, house

FILE_NAME = "activation.json"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 64 * 1024  # the file is a few hundred bytes
# Characters people put between the groups; anything else that is not a letter or a
# digit is a foreign character. (shared.license accepts these same separators.)
_SEPARATORS = frozenset(" \t\u00a0-_\u2010\u2011\u2012\u2013\u2014\u2212")
# Letters a serial never uses but normalize() maps onto one it does (O->0, I/L->1, U->V).
_LOOK_ALIKES = frozenset("OILU")


class SerialRejected(ValueError):
    """What a person typed is not a licence serial; ``key`` names the message
    (``serial_empty``, ``serial_characters``, ``serial_length``, ``serial_typo``,
    ``serial_malformed``) and ``params`` fill it."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def read_serial(text: str) -> str:
    """The canonical ``XXXXX-XXXX-XXXX-XXXX`` form of a typed serial, checked offline.

    Lower case, blanks and missing dashes are fine. A typo (the check character does not
    match), a wrong length or a foreign character raises :class:`SerialRejected` before
    anything is sent. Whether the serial is accepted is always ``shared.license``'s
    decision; this function only chooses the words that explain a refusal.
    """
    try:
        return license.check(text)
    except license.MalformedSerial as exc:
        raise _explain(text, exc) from None


def _explain(text: str, exc: license.MalformedSerial) -> SerialRejected:
    kept = [c for c in text.strip() if c not in _SEPARATORS]
    if not kept:
        return SerialRejected("serial_empty")
    foreign = sorted({c for c in kept
                      if c.upper() not in license.ALPHABET and c.upper() not in _LOOK_ALIKES})
    if foreign:
        return SerialRejected("serial_characters", chars=" ".join(repr(c) for c in foreign))
    if len(kept) != license.LENGTH:
        return SerialRejected("serial_length", count=len(kept))
    if _normalizes(text):  # well formed, so only the check character failed
        return SerialRejected("serial_typo")
    return SerialRejected("serial_malformed", detail=exc.reason)


def _normalizes(text: str) -> bool:
    try:
        license.normalize(text)
    except license.MalformedSerial:
        return False
    return True


def choose_house(text: str) -> House:
    """The house a person picked: its number in :data:`HOUSES` (1-based, as the wizard
    lists them) or its code (``B``, ``cj``). CNAS registers no provider, so it is not a
    choice. Raises ValueError for anything else."""
    choice = text.strip()
    if choice.isdigit():
        number = int(choice)
        if 1 <= number <= len(HOUSES):
            return HOUSES[number - 1]
        raise ValueError(choice)
    try:
        found = house(choice)
    except UnknownHouse:
        raise ValueError(choice) from None
    if found not in HOUSES:
        raise ValueError(choice)
    return found


def may_proceed(existing: "Activation | None", reactivate: bool) -> bool:
    """Step 1 of the wizard: an existing activation is replaced only when *Reactivare
    baza de date curenta* is ticked (so that a stray Inainte never loses it)."""
    return existing is None or reactivate


def mask_serial(serial: str) -> str:
    """The serial as ``status`` shows it: first and last group only."""
    groups = serial.split("-")
    return "-".join([groups[0], *("*" * len(g) for g in groups[1:-1]), groups[-1]])


@dataclass(frozen=True)
class Activation:
    """What a successful activation leaves on the provider's machine."""

    external_user: str
    cas: str
    provider_cui: str
    provider_name: str
    license_serial: str
    activated_at: str  # ISO 8601, UTC
    server: str = ""

    @classmethod
    def from_answer(cls, answer: Mapping, serial: str, server: str,
                    now: datetime | None = None) -> "Activation":
        """From keygen's 200 answer ``{"external_user","provider":{"cui","name"},"cas"}``."""
        provider = answer.get("provider") or {}
        at = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
        return cls(external_user=str(answer["external_user"]), cas=str(answer["cas"]),
                   provider_cui=str(provider.get("cui", "")),
                   provider_name=str(provider.get("name", "")),
                   license_serial=serial, activated_at=at, server=server)

    @property
    def house_label(self) -> str:
        """``CAS-B``: how the screens name the house."""
        try:
            return house(self.cas).short
        except UnknownHouse:
            return f"CAS-{self.cas}"

    def to_json(self) -> dict:
        return {"version": FORMAT_VERSION, **asdict(self)}


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """``$SIIU_DESKTOP_HOME`` (or ``$SIUI_DESKTOP_HOME``), else ``~/.siui-desktop``."""
    env = os.environ if env is None else env
    for name in ("SIUI_DESKTOP_HOME", "SIIU_DESKTOP_HOME"):
        value = env.get(name, "").strip()
        if value:
            return Path(value).expanduser()
    return Path.home() / ".siui-desktop"


class ActivationStore:
    """The activation file under ``home`` (``activation.json``)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / FILE_NAME

    def load(self) -> tuple[Activation | None, bool]:
        """(the activation or None, whether its permissions had to be narrowed).

        A file others could read is narrowed to 0600 rather than refused: the serial in
        it may already be exposed, and the caller says so. A file that cannot be parsed
        counts as no activation.
        """
        try:
            with open(self.path, "rb") as file:
                raw = file.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return None, False
        narrowed = False
        if stat.S_IMODE(self.path.stat().st_mode) & 0o077:
            self.path.chmod(0o600)
            narrowed = True
        if len(raw) > MAX_FILE_BYTES:
            return None, narrowed  # not a file this client wrote
        try:
            data = json.loads(raw.decode("utf-8"))
            fields = {k: data[k] for k in Activation.__dataclass_fields__ if k in data}
            return Activation(**fields), narrowed
        except (ValueError, TypeError):  # UnicodeDecodeError is a ValueError
            return None, narrowed

    def save(self, activation: Activation) -> Path:
        """Write the file atomically, private to the user; returns its path."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home.chmod(0o700)  # mkdir's mode passes through the umask, and may exist
        tmp = self.home / f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(activation.to_json(), out, ensure_ascii=False, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)  # os.open's mode passes through the umask
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        return self.path
