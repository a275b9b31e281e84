"""poppler's ``pdfsig`` (poppler-utils) judging a signed PDF against an NSS trust database
of the test's own, made with ``certutil`` (libnss3-tools): deploy/setup.sh installs both,
so a test asserts "valid and trusted" together, never one without the other."""
from __future__ import annotations

import subprocess
from pathlib import Path

VALID = "Signature Validation: Signature is Valid."
TRUSTED = "Certificate Validation: Certificate is Trusted."


def nss_database(directory: Path, *anchors: Path) -> Path:
    """A new NSS database in ``directory`` trusting each PEM in ``anchors`` as a CA
    (``CT,C,C``); returns the directory. With no anchors it trusts nothing."""
    directory.mkdir(parents=True)
    _certutil(directory, "-N", "--empty-password")
    for n, anchor in enumerate(anchors):
        _certutil(directory, "-A", "-n", f"siui-test-anchor-{n}", "-t", "CT,C,C", "-i", str(anchor))
    return directory


def pdfsig(pdf: Path, nss: Path, *options: str) -> str:
    """pdfsig's report (stdout and stderr) on ``pdf``, judged with the database ``nss``.

    No -no-ocsp: poppler 22.12 then reports "Unknown issue" for a trusted chain; the test
    certificates carry no OCSP address, so nothing is fetched anyway."""
    done = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", *options, str(pdf)], capture_output=True,
                          text=True, timeout=60)
    return done.stdout + done.stderr


def assert_valid_and_trusted(pdf: Path, anchor: Path, workdir: Path) -> str:
    """pdfsig, trusting ``anchor`` alone, finds the signature valid and its certificate
    trusted; returns the report for further checks."""
    report = pdfsig(pdf, nss_database(workdir / "nss-trusting", anchor))
    assert VALID in report, report
    assert TRUSTED in report, report
    return report


def _certutil(directory: Path, *args: str) -> None:
    done = subprocess.run(["certutil", "-d", f"sql:{directory}", *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"certutil {' '.join(args)}: {done.stdout}{done.stderr}"
