"""``python3 -m deploy.fresh`` (``make test-fresh``): the README's ``make test`` on a
minimal Debian 12, in a network of its own, as a new user with sudo would run it.

1. A minimal bookworm root (``debootstrap --variant=minbase``, plus sudo and make, the
   Debian archive's main, updates and security suites as an installed Debian has them)
   is built once and kept as a tarball in the cache directory; every run unpacks a
   pristine copy of it.
2. A clean clone of this repository's HEAD goes into the new user's home: committed work
   only, never the working tree's uncommitted changes.
3. The root gets a network namespace of its own: a veth pair on a private /30 and no
   route beyond it. Its only way out is a forward proxy on the host's end of the link
   (deploy/fresh/proxy.py) that lets through the hosts the root's apt sources name and
   pip's own index and file hosts, and refuses and counts everything else. apt and pip
   inside are configured to use it. The root's own loopback means its 127.0.0.1:5432
   and :5672 are its own: the set-up must install and start PostgreSQL and RabbitMQ.
4. ``make test`` runs in the chroot (PID, mount and UTS namespaces of its own, /proc,
   /sys and /dev mounted by deploy/fresh/enter.sh) as that user in a login shell.
5. Afterwards it checks that everything listening in the root listens on loopback only,
   prints the pytest summary line and the set-up's timings, and exits non-zero if
   anything failed. Namespace, veth, mounts, proxy and every process of the root are
   removed on the way out, also after a failure, Ctrl-C or SIGTERM.

Needs root, Linux with network namespaces, ip (iproute2), unshare, git, and network
access to the Debian archive and PyPI (debootstrap is installed with apt if missing).
Logs and the suite's artifacts are kept under test-artifacts/fresh/<run>/.
"""
from __future__ import annotations

import argparse
import configparser
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from deploy.fresh.proxy import AllowListProxy, ProxyThread

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUITE = "bookworm"
VARIANT = "minbase"
# What a new user has besides the minimal system: sudo (the installer sets it up for the
# first user when root has no password) and make (to type `make test`).
INCLUDE = ("sudo", "make")
USER = "engineer"
HOSTNAME = "siui-fresh"
DEFAULT_CACHE = Path(os.environ.get("SIUI_FRESH_CACHE", "/var/cache/siui-fresh"))
DEFAULT_TIMEOUT = 90 * 60
PROXY_PORT = 3128
# The private /30s the veth link may use; the first one no address on the host overlaps.
LINK_POOL = ipaddress.ip_network("10.213.0.0/16")
SUMMARY = re.compile(r"^=+ (?P<text>.*\b(passed|failed|error|errors|skipped|deselected)\b.*) in "
                     r"(?P<secs>[\d.]+)s.* =+$")
# The set-up's steps (deploy/setup.sh prints "==> <step>"), for the timings.
STEPS = (("System packages", "apt"), ("PostgreSQL", "PostgreSQL"), ("RabbitMQ", "RabbitMQ"),
         ("Database", "database"), ("Python environment", "pip"), ("Dev PKI", "dev PKI"),
         ("Ready in", None))


def say(message: str) -> None:
    print(f"test-fresh: {message}", flush=True)


class Failure(Exception):
    """The run cannot go on; the message says why."""


def run(*args: str, check: bool = True, capture: bool = False, **kwargs) -> subprocess.CompletedProcess:
    if capture:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(args, check=check, text=True, **kwargs)


# -- preconditions --------------------------------------------------------------------

def require_host() -> None:
    if os.geteuid() != 0:
        raise Failure("needs root (debootstrap, network namespaces, chroot): sudo make test-fresh")
    if not sys.platform.startswith("linux"):
        raise Failure("needs Linux (network namespaces)")
    missing = [tool for tool in ("ip", "unshare", "chroot", "git", "tar", "mount") if not shutil.which(tool)]
    if missing:
        raise Failure(f"missing on this host: {', '.join(missing)}")
    if not shutil.which("debootstrap"):
        if not shutil.which("apt-get"):
            raise Failure("debootstrap is missing and there is no apt-get to install it")
        say("installing debootstrap (apt)")
        run("apt-get", "update", "-q", stdout=subprocess.DEVNULL)
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap",
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)


def pip_hosts() -> set[str]:
    """The hosts pip uses when nothing configures another index: its own defaults, asked
    of pip itself (the host's, or Debian's python3-pip installed for the purpose)."""
    query = ("from pip._internal.models.index import PyPI; "
             "print(PyPI.netloc); print(PyPI.file_storage_domain)")
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        result = subprocess.run([python, "-c", query], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.split():
            return set(result.stdout.split())
    if shutil.which("apt-get"):
        say("installing python3-pip (apt), to learn pip's default hosts")
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-pip",
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
        result = subprocess.run(["/usr/bin/python3", "-c", query], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.split():
            return set(result.stdout.split())
    raise Failure("cannot learn pip's default index hosts (no pip on this host)")


def host_ca_bundle() -> Path | None:
    """The CA bundle the host's pip is told to verify HTTPS with, if any (PIP_CERT and
    the like, or `cert` in pip's configuration files); None when pip uses its own."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE"):
        if os.environ.get(name) and Path(os.environ[name]).is_file():
            return Path(os.environ[name])
    parser = configparser.ConfigParser()
    parser.read(["/etc/xdg/pip/pip.conf", "/etc/pip.conf", Path.home() / ".config/pip/pip.conf",
                 Path.home() / ".pip/pip.conf"])
    for section in ("install", "global"):
        cert = parser.get(section, "cert", fallback=None)
        if cert and Path(cert).is_file():
            return Path(cert)
    return None


def apt_hosts(root: Path) -> set[str]:
    """The hosts the root's apt sources name."""
    hosts = set()
    for path in [root / "etc/apt/sources.list", *sorted((root / "etc/apt/sources.list.d").glob("*"))]:
        if path.is_file():
            for match in re.finditer(r"\b(?:https?)://[^\s\]]+", path.read_text()):
                if match.group(0).split("://")[1]:
                    hosts.add(urlsplit(match.group(0)).hostname)
    hosts.discard(None)
    if not hosts:
        raise Failure(f"no apt sources in {root}")
    return hosts


# -- the base root --------------------------------------------------------------------

@dataclass(frozen=True)
class Base:
    tarball: Path
    built_in: float | None  # seconds, when built by this run


def base_spec() -> dict:
    return {"suite": SUITE, "variant": VARIANT, "include": list(INCLUDE), "format": 2}


def ensure_base(cache: Path, rebuild: bool) -> Base:
    cache.mkdir(parents=True, exist_ok=True)
    tarball, stamp = cache / f"{SUITE}-{VARIANT}.tar", cache / f"{SUITE}-{VARIANT}.json"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once build it once
        if not rebuild and tarball.is_file() and stamp.is_file():
            with contextlib.suppress(ValueError):
                if json.loads(stamp.read_text()).get("spec") == base_spec():
                    say(f"base root: {tarball} (cached; --rebuild-base builds it anew)")
                    return Base(tarball, None)
        started = time.monotonic()
        build = cache / "build.tmp"
        remove_tree(build)
        say(f"base root: debootstrap --variant={VARIANT} --include={','.join(INCLUDE)} {SUITE} "
            "(a few minutes, once)")
        try:
            run("debootstrap", f"--variant={VARIANT}", f"--include={','.join(INCLUDE)}", SUITE, str(build),
                stdout=subprocess.DEVNULL)
            configure_base(build)
            run("tar", "--numeric-owner", "--xattrs", "-C", str(build), "-cpf", f"{tarball}.tmp", ".")
            os.replace(f"{tarball}.tmp", tarball)
        finally:
            remove_tree(build)
        seconds = time.monotonic() - started
        stamp.write_text(json.dumps({"spec": base_spec(), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "seconds": round(seconds)}, indent=1) + "\n")
        say(f"base root built in {seconds:.0f}s: {tarball}")
        return Base(tarball, seconds)


def configure_base(root: Path) -> None:
    """What an installed Debian 12 has and debootstrap leaves out: the updates and
    security suites, a host name that resolves, no leftover package lists."""
    sources = (root / "etc/apt/sources.list").read_text()
    match = re.search(r"^deb\s+(\S+)\s+" + SUITE + r"\s+main", sources, re.M)
    if not match:
        raise Failure(f"unexpected sources.list from debootstrap: {sources!r}")
    mirror = match.group(1).rstrip("/")
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    (root / "etc/apt/sources.list").write_text(
        f"deb {mirror} {SUITE} main\n"
        f"deb {mirror} {SUITE}-updates main\n"
        f"deb {security} {SUITE}-security main\n")
    (root / "etc/hostname").write_text(HOSTNAME + "\n")
    (root / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n"
                                    "::1\tlocalhost ip6-localhost ip6-loopback\n")
    # No resolver: the root reaches nothing by name, only the proxy by address.
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("# test-fresh: no resolver; apt and pip go through the proxy\n")
    run("chroot", str(root), "apt-get", "clean")
    for path in (root / "var/lib/apt/lists").glob("*"):
        if path.is_file():
            path.unlink()


# -- the run's root ---------------------------------------------------------------------

def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this (the host's) mount namespace."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def remove_tree(path: Path) -> None:
    """rm -rf, but never through a mount: a bind-mounted /dev below would lose its nodes."""
    if not path.exists():
        return
    for point in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    if mounts_under(path):
        raise Failure(f"still mounted below {path}: {mounts_under(path)}; not removing it")
    run("rm", "-rf", "--one-file-system", str(path))


def prepare_root(root: Path, base: Base, commit: str, proxy_url: str) -> Path:
    """A pristine copy of the base with the new user, the clone and the proxy settings."""
    root.mkdir(parents=True)
    run("tar", "--numeric-owner", "--xattrs", "-C", str(root), "-xpf", str(base.tarball))
    run("chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", USER)
    sudoers = root / "etc/sudoers.d" / USER
    sudoers.write_text(f"# test-fresh: the new user may use sudo without a password\n"
                       f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    home = root / "home" / USER
    clone = home / "siui-access"
    run("git", "clone", "--quiet", "--no-hardlinks", "--no-checkout", str(REPO), str(clone))
    run("git", "-C", str(clone), "checkout", "--quiet", "--detach", commit)
    run("chroot", str(root), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/siui-access")
    # apt and pip learn the way out as a new user behind a proxy would tell them. Not
    # HTTP(S)_PROXY in the environment: every HTTP client would take it, the tests'
    # requests to 127.0.0.1 included.
    (root / "etc/apt/apt.conf.d/80siui-fresh-proxy").write_text(
        f'Acquire::http::Proxy "{proxy_url}";\nAcquire::https::Proxy "{proxy_url}";\n')
    pip_conf = f"[global]\nproxy = {proxy_url}\n"
    if (bundle := host_ca_bundle()) is not None:
        # The host reaches PyPI through a gateway that its own trust store vouches for
        # (a TLS-inspecting one, whose CA a machine behind it must trust): so must pip in
        # the root, or every HTTPS download fails verification. apt uses plain HTTP.
        (root / "usr/local/share/siui-fresh").mkdir(parents=True, exist_ok=True)
        shutil.copy(bundle, root / "usr/local/share/siui-fresh/host-ca.pem")
        pip_conf += "cert = /usr/local/share/siui-fresh/host-ca.pem\n"
        say(f"pip in the root trusts the host's CA bundle too ({bundle}, as the host's pip does)")
    (root / "etc/pip.conf").write_text(pip_conf)
    inside = root / "usr/local/sbin/siui-fresh-inside"
    shutil.copy(HERE / "inside.sh", inside)
    inside.chmod(0o755)
    return clone


# -- the network namespace --------------------------------------------------------------

@dataclass
class Link:
    netns: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str
    prefix: int = 30


def free_link(tag: str) -> Link:
    used = []
    for line in run("ip", "-o", "-4", "addr", "show", capture=True).stdout.splitlines():
        with contextlib.suppress(ValueError, IndexError):
            used.append(ipaddress.ip_interface(line.split()[3]).network)
    for net in LINK_POOL.subnets(new_prefix=30):
        if not any(net.overlaps(other) for other in used):
            host_ip, ns_ip = list(net.hosts())
            return Link(f"siui-fresh-{tag}", f"sfh{tag}", f"sfn{tag}", str(host_ip), str(ns_ip))
    raise Failure(f"no free /30 in {LINK_POOL}")


def make_link(link: Link, cleanup: contextlib.ExitStack) -> None:
    run("ip", "netns", "add", link.netns)
    cleanup.callback(quietly, "delete the network namespace", delete_link, link)
    run("ip", "link", "add", link.host_if, "type", "veth", "peer", "name", link.ns_if)
    run("ip", "link", "set", link.ns_if, "netns", link.netns)
    run("ip", "addr", "add", f"{link.host_ip}/{link.prefix}", "dev", link.host_if)
    run("ip", "link", "set", link.host_if, "up")
    inside = ("ip", "netns", "exec", link.netns)
    run(*inside, "ip", "addr", "add", f"{link.ns_ip}/{link.prefix}", "dev", link.ns_if)
    run(*inside, "ip", "link", "set", link.ns_if, "up")
    run(*inside, "ip", "link", "set", "lo", "up")
    # No default route is added: from inside, only the /30 (and so the proxy) is reachable.


def delete_link(link: Link) -> None:
    subprocess.run(["ip", "netns", "del", link.netns], check=False, stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "link", "del", link.host_if], check=False, stderr=subprocess.DEVNULL)


# -- processes of the root ----------------------------------------------------------------

def processes_in(root: Path) -> list[int]:
    """Host PIDs of every process whose root directory is ``root``."""
    target, found = str(root.resolve()), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "root") == target:
                    found.append(int(entry.name))
    return found


def stop_root(process: subprocess.Popen | None, root: Path) -> None:
    """End the root's PID namespace: killing unshare makes the kernel kill its PID 1
    (--kill-child), and with it every process in the namespace. Then make sure."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    deadline = time.monotonic() + 20
    while (left := processes_in(root)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    if processes_in(root):
        raise Failure(f"processes left in {root}: {processes_in(root)}")


# -- what listens inside --------------------------------------------------------------------

def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    # /proc/net/*6: four 32-bit words, each in host (little-endian) order.
    return ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def socket_owners(root: Path) -> dict[str, str]:
    owners = {}
    for pid in processes_in(root):
        with contextlib.suppress(OSError):
            name = (Path("/proc") / str(pid) / "comm").read_text().strip()
            for fd in (Path("/proc") / str(pid) / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        owners[target[8:-1]] = name
    return owners


def listeners(link: Link, root: Path) -> list[tuple[str, str, bool]]:
    """(protocol address:port, owner, on loopback) of every listening TCP socket and
    every bound UDP socket in the root's network namespace."""
    owners = socket_owners(root)
    found = []
    for table, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        text = run("ip", "netns", "exec", link.netns, "cat", f"/proc/net/{table}", capture=True).stdout
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != state:
                continue
            hex_address, hex_port = fields[1].split(":")
            address = _address(hex_address)
            mapped = getattr(address, "ipv4_mapped", None)
            loopback = (mapped or address).is_loopback
            shown = f"[{address}]" if address.version == 6 else str(address)
            found.append((f"{table} {shown}:{int(hex_port, 16)}", owners.get(fields[9], "?"), loopback))
    return found


# -- the run --------------------------------------------------------------------------------

@dataclass
class Timings:
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.monotonic())

    def between(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return self.marks[end] - self.marks[start]
        return None


def watch(process: subprocess.Popen, log, timings: Timings) -> tuple[int | None, str | None]:
    """Echo and log the root's output; returns (make test's exit code, pytest summary)."""
    summary = rc = None
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        log.write(line + "\n")
        print(line, flush=True)
        if line.startswith("==> "):
            for step, _ in STEPS:
                if line[4:].startswith(step):
                    timings.mark(step)
        if SUMMARY.match(line):
            summary = line.strip("= ")
        if line.startswith("siui-fresh: make-test-exit="):
            rc = int(line.split("=", 1)[1])
            timings.mark("end")
            return rc, summary
    return rc, summary


def report_timings(timings: Timings, base: Base, extract: float) -> str:
    parts = [f"base root {base.built_in:.0f}s (built)" if base.built_in is not None else "base root cached",
             f"unpack+clone {extract:.0f}s"]
    names = [step for step, _ in STEPS]
    for (step, label), following in zip(STEPS, names[1:]):
        seconds = timings.between(step, following)
        if label and seconds is not None:
            parts.append(f"{label} {seconds:.0f}s")
    for label, start, end in (("set-up", "System packages", "Ready in"), ("suite", "Ready in", "end"),
                              ("make test", "start", "end")):
        seconds = timings.between(start, end)
        if seconds is not None:
            parts.append(f"{label} {seconds:.0f}s")
    return ", ".join(parts)


def quietly(what: str, action: Callable, *args) -> None:
    """A cleanup step: never lets one failure stop the others."""
    try:
        action(*args)
    except Exception as exc:
        say(f"cleanup: could not {what}: {exc}")


def _stop_signals(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def no_interruptions() -> Iterator[None]:
    """Cleanup runs to its end: a second Ctrl-C must not leave a namespace behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m deploy.fresh", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"where the base root is kept and runs unpack (default {DEFAULT_CACHE})")
    parser.add_argument("--rebuild-base", action="store_true", help="debootstrap the base root anew")
    parser.add_argument("--keep", action="store_true", help="keep the run's root directory afterwards")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for the whole run")
    args = parser.parse_args(argv)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_signals)
    started = time.monotonic()
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    artifacts = REPO / "test-artifacts" / "fresh" / run_id
    failures: list[str] = []
    with contextlib.ExitStack() as cleanup:
        try:
            require_host()
            commit = run("git", "-C", str(REPO), "rev-parse", "HEAD", capture=True).stdout.strip()
            dirty = run("git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                        capture=True).stdout.strip()
            say(f"commit {commit[:12]} (HEAD only" + ("; the working tree's uncommitted changes are NOT in "
                                                       "this run" if dirty else "") + ")")
            artifacts.mkdir(parents=True)
            base = ensure_base(args.cache, args.rebuild_base)

            link = free_link(f"{os.getpid() % 100000}")
            proxy_url = f"http://{link.host_ip}:{PROXY_PORT}"
            run_dir = args.cache / f"run-{run_id}"
            root = run_dir / "root"
            if not args.keep:
                cleanup.callback(quietly, f"remove {run_dir}", remove_tree, run_dir)
            unpacking = time.monotonic()
            clone = prepare_root(root, base, commit, proxy_url)
            extract = time.monotonic() - unpacking

            make_link(link, cleanup)
            allow = apt_hosts(root) | pip_hosts()
            proxy = ProxyThread(AllowListProxy(allow, artifacts / "proxy.log"), link.host_ip, PROXY_PORT).start()
            cleanup.callback(quietly, "stop the proxy", proxy.stop)
            say(f"network namespace {link.netns}: {link.ns_ip}/30, no route out; proxy on "
                f"{link.host_ip}:{proxy.port} allowing {', '.join(sorted(allow))}")

            timings = Timings()
            timings.mark("start")
            log = open(artifacts / "make-test.log", "w")
            cleanup.callback(log.close)
            process = subprocess.Popen(
                ["ip", "netns", "exec", link.netns, "unshare", "--pid", "--fork", "--kill-child", "--mount",
                 "--uts", f"--mount-proc={root}/proc", "--", "/bin/bash", str(HERE / "enter.sh"), str(root),
                 "/usr/local/sbin/siui-fresh-inside", USER, f"/home/{USER}/siui-access"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)  # a terminal's Ctrl-C reaches this runner, which stops it
            # Cleanup runs last-registered first: the processes stop, then their logs are
            # kept, then the proxy stops, the namespace goes and the root is removed.
            cleanup.callback(quietly, "keep the root's logs", keep_logs, root, clone, artifacts)
            cleanup.callback(quietly, "stop the processes in the root", stop_root, process, root)
            # A run that hangs is ended by its deadline: the output ends, watch() returns.
            watchdog = threading.Timer(max(0.0, started + args.timeout - time.monotonic()),
                                       lambda: os.killpg(process.pid, signal.SIGKILL))
            watchdog.daemon = True
            watchdog.start()
            cleanup.callback(watchdog.cancel)

            rc, summary = watch(process, log, timings)
            if rc is None:
                failures.append("make test did not finish: the root's PID 1 ended "
                                f"(exit {process.poll()}) or the run passed its {args.timeout:.0f}s deadline")
            elif rc != 0:
                failures.append(f"make test exited with {rc}")
            if summary is None:
                failures.append("no pytest summary line")
            elif re.search(r"\b(failed|error|errors|skipped|xfailed|xpassed)\b", summary):
                failures.append(f"pytest: {summary}")

            found = listeners(link, root)
            exposed = [f"{where} ({owner})" for where, owner, loopback in found if not loopback]
            if exposed:
                failures.append("listening beyond loopback in the root: " + ", ".join(exposed))

            tally = proxy.proxy.tally
            say("pytest: " + (summary or "(no summary line)"))
            say("timings: " + report_timings(timings, base, extract))
            say("proxy: " + ", ".join(f"{host} {count}" for host, count in tally.allowed.most_common())
                + f" (requests, or tunnels for HTTPS), {tally.bytes_in / 1e6:.0f} MB in; refused: "
                + (", ".join(f"{target} {count}" for target, count in tally.denied.most_common()) or "none")
                + (f"; upstream failures: {dict(tally.failed)}" if tally.failed else ""))
            if tally.denied:
                failures.append("the set-up tried to reach hosts beyond the package registries: "
                                + ", ".join(tally.denied))
            say("listening in the root: " + ", ".join(f"{where} ({owner})" for where, owner, _ in found))
        except KeyboardInterrupt:
            failures.append("interrupted")
        except (Failure, subprocess.CalledProcessError, OSError) as exc:
            failures.append(str(exc))
        finally:
            with no_interruptions():
                say("cleaning up")
                cleanup.close()
    leftovers = [line for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                 text=True).stdout.splitlines()
                 if line.split()[:1] == [f"siui-fresh-{os.getpid() % 100000}"]]
    if leftovers:
        failures.append(f"network namespace left: {leftovers}")
    say(f"logs: {artifacts}")
    say(f"total {time.monotonic() - started:.0f}s")
    if failures:
        for failure in failures:
            say(f"FAILED: {failure}")
        return 1
    say("PASSED")
    return 0


def keep_logs(root: Path, clone: Path, artifacts: Path) -> None:
    """The suite's artifacts and the root's service logs, for reading after the run."""
    if (clone / "test-artifacts").is_dir():
        shutil.copytree(clone / "test-artifacts", artifacts / "test-artifacts", dirs_exist_ok=True, symlinks=True)
    for name in ("postgresql", "rabbitmq", "apt"):
        if (root / "var/log" / name).is_dir():
            shutil.copytree(root / "var/log" / name, artifacts / "var-log" / name, dirs_exist_ok=True,
                            symlinks=True)


if __name__ == "__main__":
    sys.exit(main())
