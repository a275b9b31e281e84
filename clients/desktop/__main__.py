"""``python -m clients.desktop``: the provider's desktop client.

Without a subcommand (or with ``wizard``) it runs the *Activare* wizard in the terminal;
``gui`` opens the window (the same steps, menu *Administrare*, with the status bar);
``activate``, ``connect`` and ``status`` are the same steps for scripts. Exit status: 0 done (online,
for ``connect --once``); 1 refused, offline or cancelled; 2 unusable input (a serial with
a typo, an unknown house, a certificate or key that cannot be used).
"""
from __future__ import annotations

import argparse
import getpass
import signal
import sys
import time
from pathlib import Path

from clients.desktop.activation import (ActivationStore, SerialRejected, choose_house,
                                        default_home, mask_serial, read_serial)
from clients.desktop.keygen import ActivationRefused, activate_and_save, default_server
from clients.desktop.messages import LANGUAGES, Messages, resolve_language
from clients.desktop.backoff import CAP_SECONDS, Schedule
from clients.desktop.connection import (CertificateFiles, default_online_server,
                                        load_credentials, open_channel)
from clients.desktop.online import DEFAULT_INTERVAL, keep_online
from clients.desktop.statusbar import StatusBar, render, use_color
from clients.desktop.tls import CredentialsError, default_ca
from clients.desktop.wizard import Console, run_wizard

OK, FAILED, BAD_INPUT = 0, 1, 2


class _Stopped(Exception):
    """SIGTERM: leave as cleanly as on Ctrl-C."""


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's copy must not overwrite what was given before it.
    common.add_argument("--lang", choices=LANGUAGES, default=argparse.SUPPRESS,
                        help="ro (default) or en; else LANG=en* selects English")
    common.add_argument("--home", type=Path, default=argparse.SUPPRESS,
                        help="where the activation is kept (default $SIIU_DESKTOP_HOME, "
                             "else ~/.siui-desktop)")
    top = argparse.ArgumentParser(prog="python -m clients.desktop", parents=[common],
                                  description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--server", dest="keygen_server", default=argparse.SUPPRESS,
                     help="keygen URL for the wizard (default $SIUI_KEYGEN_URL or :8101)")
    sub = top.add_subparsers(dest="command")

    wizard = sub.add_parser("wizard", parents=[common], help="Administrare / Activare, step by step")
    wizard.add_argument("--server", dest="keygen_server", default=argparse.SUPPRESS, help="keygen URL")

    activate = sub.add_parser("activate", parents=[common], help="activate with a licence serial")
    activate.add_argument("--serial", required=True, help="the licence serial (Serie de licenta)")
    activate.add_argument("--cas", required=True, help="the insurance house's code, e.g. B")
    activate.add_argument("--server", dest="keygen_server", default=argparse.SUPPRESS, help="keygen URL")

    connect = sub.add_parser("connect", parents=[common], help="Conectare online, with the semaphore")
    connect.add_argument("--cert", type=Path, help="client certificate (PEM; more certs = chain)")
    connect.add_argument("--key", type=Path, help="its private key (PEM, passphrase asked if needed)")
    connect.add_argument("--p12", type=Path, help="or a PKCS#12 bundle (passphrase asked)")
    connect.add_argument("--once", action="store_true", help="connect, print, exit 0 online / 1 offline")
    connect.add_argument("--interval", type=_seconds, default=DEFAULT_INTERVAL,
                         help=f"heartbeat every S seconds (default {DEFAULT_INTERVAL:g})")
    connect.add_argument("--server", dest="online_server", default=argparse.SUPPRESS,
                         help="online channel URL (default https://127.0.0.1:$SIUI_OCSP_TLS_PORT or 8443)")
    _online_options(connect)

    gui = sub.add_parser("gui", parents=[common], help="the window: Administrare / Activare, "
                                                       "Conectare online, the status bar")
    gui.add_argument("--server", dest="keygen_server", default=argparse.SUPPRESS, help="keygen URL")
    gui.add_argument("--online-server", dest="online_server", default=argparse.SUPPRESS,
                     help="online channel URL (default https://127.0.0.1:$SIUI_OCSP_TLS_PORT or 8443)")
    gui.add_argument("--interval", type=_seconds, default=DEFAULT_INTERVAL,
                     help=f"heartbeat every S seconds (default {DEFAULT_INTERVAL:g})")
    _online_options(gui)

    sub.add_parser("status", parents=[common], help="show the stored activation")
    return top


def _online_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--ca", type=Path,
                         help="CA file the server's certificate must chain to "
                              "(default $SIUI_DATA_DIR/pki/root-ca.pem if present, else the system's)")
    command.add_argument("--retry-max", type=_seconds, default=CAP_SECONDS,
                         help="longest wait between reconnects, full-jitter backoff "
                              f"(default {CAP_SECONDS:g} s)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("between 0.1 and 3600 seconds")
    return value


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="replace")  # a non-UTF-8 terminal must not crash us
    args = parser().parse_args(argv)
    messages = Messages(resolve_language(getattr(args, "lang", None)))
    store = ActivationStore(getattr(args, "home", None) or default_home())
    command = args.command or "wizard"
    if command == "connect" and not args.p12 and not (args.cert and args.key):
        parser().error("connect needs --cert and --key, or --p12")
    handler = {"wizard": _wizard, "activate": _activate, "connect": _connect, "status": _status,
               "gui": _gui}
    return handler[command](args, messages, store)


def _wizard(args, messages: Messages, store: ActivationStore) -> int:
    console = Console(ask=input, say=print)
    return run_wizard(console, messages, store, server=getattr(args, "keygen_server", None) or default_server())


def _gui(args, messages: Messages, store: ActivationStore) -> int:
    from clients.desktop.gui import run_window  # Tk only for the window: scripts need none

    return run_window(messages, store,
                      keygen_server=getattr(args, "keygen_server", None) or default_server(),
                      online_server=getattr(args, "online_server", None) or default_online_server(),
                      ca=args.ca or default_ca(), interval=args.interval, retry_max=args.retry_max)


def _activate(args, messages: Messages, store: ActivationStore) -> int:
    try:
        serial = read_serial(args.serial)
        house = choose_house(args.cas)
    except SerialRejected as rejected:
        return _fail(messages(rejected.key, **rejected.params), BAD_INPUT)
    except ValueError:
        return _fail(messages("house_invalid", text=args.cas), BAD_INPUT)
    server = getattr(args, "keygen_server", None) or default_server()
    try:
        activation, path = activate_and_save(store, server, serial, house.code)
    except ActivationRefused as refused:
        return _fail(messages(refused.key, **refused.params), FAILED)
    print(messages("activation_ok", user=activation.external_user, provider=activation.provider_name,
                   cui=activation.provider_cui, house=activation.house_label))
    print(messages("activation_saved", path=path))
    return OK


def _status(args, messages: Messages, store: ActivationStore) -> int:
    activation = _load(messages, store)
    if activation is None:
        return _fail(messages("not_activated"), FAILED)
    print(messages("status_activated", user=activation.external_user, house=activation.house_label,
                   provider=activation.provider_name, cui=activation.provider_cui,
                   serial=mask_serial(activation.license_serial), at=activation.activated_at,
                   path=store.path))
    return OK


def _connect(args, messages: Messages, store: ActivationStore) -> int:
    if _load(messages, store) is None:
        return _fail(messages("not_activated"), FAILED)

    def ask(name: str, retry: bool) -> str:
        if retry:
            print(messages("passphrase_wrong", file=name), file=sys.stderr)
        return getpass.getpass(messages("passphrase_prompt", file=name))

    server = getattr(args, "online_server", None) or default_online_server()
    try:
        credentials = load_credentials(CertificateFiles(args.p12, args.cert, args.key), ask)
        channel = open_channel(store, credentials, server=server, ca=args.ca or default_ca(),
                               language=messages.language)
    except CredentialsError as exc:
        return _fail(messages(exc.key, **exc.params), BAD_INPUT)
    except (EOFError, KeyboardInterrupt):
        return _fail(messages("connect_cancelled"), FAILED)
    print(messages("certificate_info", subject=credentials.subject, issuer=credentials.issuer,
                   until=credentials.not_after))
    schedule = Schedule(args.interval, cap=args.retry_max)
    if args.once:
        status = keep_online(channel, lambda s: None, schedule=schedule, wait=_sleep, once=True)
        print(render(status, messages, color=use_color(sys.stdout), server=server))
        return OK if status.online else FAILED
    bar = StatusBar(sys.stdout, messages, server=server)
    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        keep_online(channel, bar.show, schedule=schedule, wait=_sleep)
    except (KeyboardInterrupt, _Stopped):
        pass
    bar.close()
    return OK


def _load(messages: Messages, store: ActivationStore):
    activation, narrowed = store.load()
    if narrowed:
        print(messages("file_permissions_fixed", path=store.path), file=sys.stderr)
    return activation


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)  # Ctrl-C and SIGTERM interrupt it: that is how the loop stops
    return False


def _raise_stopped(signum, frame) -> None:
    raise _Stopped


def _fail(text: str, code: int) -> int:
    print(text, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
