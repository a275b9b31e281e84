"""deploy/systemd/: the units pass ``systemd-analyze verify`` (systemd 252, Debian 12's),
which reads unit files without a running systemd: every key known, every dependency
found, every command executable. The units name /opt/siui, where an installed host has
the project; here they are checked as copies naming this checkout and its interpreter,
the one change made to them. Any warning fails the test (verify itself only warns on an
unknown key)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("keygen", "users", "certs", "ocsp", "console")

def _installed_copy(target: Path) -> list[Path]:
    """The units as on a host, but naming this checkout; an instance link per service."""
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/siui/.venv/bin/python", sys.executable).replace("/opt/siui", str(ROOT))
        (target / unit.name).write_text(text)
    for service in SERVICES:
        (target / f"siui@{service}.service").symlink_to("siui@.service")
    return sorted(target.iterdir())


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    units = _installed_copy(tmp_path)
    done = subprocess.run(["systemd-analyze", "verify", *[str(u) for u in units if u.name != "siui@.service"]],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).strip() == ""


def test_a_misspelt_key_is_caught(tmp_path):
    # The check above is only as good as verify's warnings: it must see this one.
    _installed_copy(tmp_path)
    template = tmp_path / "siui@.service"
    template.write_text(template.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "siui@ocsp.service")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "Unknown key" in done.stderr


def test_every_instance_the_target_wants_is_a_service_module():
    wants = next(line for line in (UNITS / "siui.target").read_text().splitlines() if line.startswith("Wants="))
    instances = [w.removeprefix("siui@").removesuffix(".service") for w in wants.removeprefix("Wants=").split()]
    assert sorted(instances) == sorted(SERVICES)
    for service in instances:
        assert importlib.util.find_spec(f"services.{service}.__main__") is not None, service
