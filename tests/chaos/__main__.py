"""``python -m tests.chaos`` (``make chaos``): the fault suite with its ledger.

Starts a PostgreSQL cluster and a RabbitMQ node of its own (free ports, temporary
directories), sets them up as deploy/setup.sh does, runs the stack on them as ``make up``
does (``python -m deploy.run``), then runs each scenario under load and prints the
ledger, also written to test-artifacts/chaos/ledger.md and ledger.json. Exit status 0
only when every scenario passes. Everything it started is stopped and removed at the
end, after a failure or Ctrl-C / SIGTERM too. The machine's own PostgreSQL and RabbitMQ
are never touched.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from tests.chaos import ledger
from tests.chaos.faults import SCENARIOS
from tests.chaos.scenarios import run_scenario
from tests.chaos.session import ARTIFACTS, Session


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--keys-per-second", type=float, default=3.0, help="providers with a key, per second")
    parser.add_argument("--changes-per-second", type=float, default=4.0, help="suspensions/reinstatements per second")
    parser.add_argument("--certificates", type=int, default=20, help="certificates the load toggles")
    parser.add_argument("--outage", type=float, default=6.0, help="seconds the broker stays away")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:22} {scenario.what}")
        raise SystemExit(0)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    return args


async def main(args: argparse.Namespace) -> int:
    # SIGTERM as Ctrl-C: the run is cancelled and everything is cleaned up on the way out.
    task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    names = args.scenarios or list(SCENARIOS)
    results: list[ledger.Result] = []
    began = time.monotonic()
    preamble = ""
    try:
        async with Session(certs=args.certificates) as session:
            setup = ", ".join(f"{k} {v:.1f} s" for k, v in session.setup_seconds.items())
            preamble = (f"Load: {args.keys_per_second:g} keys/s, {args.changes_per_second:g} state changes/s over "
                        f"{args.certificates} certificates, OCSP probed every 50 ms. Set-up: {setup}. "
                        f"Node {session.rabbit.name}, PostgreSQL on :{session.pg.port}.\n")
            print(f"chaos: ready ({setup}); scenarios: {', '.join(names)}", flush=True)
            for name in names:
                print(f"chaos: {name} ...", flush=True)
                result = await run_scenario(session, SCENARIOS[name], keys_per_second=args.keys_per_second,
                                            changes_per_second=args.changes_per_second, outage=args.outage)
                results.append(result)
                ledger.write(results, ARTIFACTS, preamble)
                print(f"chaos: {name}: {result.verdict} ({result.seconds:.0f} s)"
                      + "".join(f"\n    - {reason}" for reason in result.failures), flush=True)
    finally:
        if results:
            md, js = ledger.write(results, ARTIFACTS, preamble
                                  + f"Total {time.monotonic() - began:.0f} s.\n")
            print("\n" + ledger.table(results), flush=True)
            print(f"chaos: ledger in {md} and {js}", flush=True)
    return 0 if results and all(r.verdict == "PASS" for r in results) and len(results) == len(names) else 1


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    try:
        sys.exit(asyncio.run(main(arguments)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("chaos: interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
