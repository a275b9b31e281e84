"""``python -m bench``: run every benchmark in this folder, one process each, in name order.

Each ``bench/<name>.py`` is a module runnable as ``python -m bench.<name>`` that sets up
its own scratch database and stops by itself. ``python -m bench ocsp keygen`` runs only
those. The exit code is the first failing benchmark's, else 0.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"bench: no such benchmark: {', '.join(unknown)} (have: {', '.join(available())})", file=sys.stderr)
        return 2
    code = 0
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        result = subprocess.run([sys.executable, "-m", f"bench.{name}"])
        if result.returncode and not code:
            code = result.returncode
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
