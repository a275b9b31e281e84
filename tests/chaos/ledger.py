"""The ledger: per scenario, what was asked, what is there, what went wrong, the verdict.

Targets (issue 13), checked for every scenario where they apply:

- zero missing: every key issued has its external user in users; every certificate's
  final state asked is what OCSP answers;
- zero doubled: no key yields two users or two key records, no state change is
  recorded twice;
- no 5xx other than 503 with Retry-After (a dependency away for now);
- OCSP keeps answering: the longest gap between answers of the 50 ms prober is at
  most 1 s (every scenario but the one that kills the ocsp service itself);
- events flow again at most 2 s after the broker or the database is back: a key issued
  at that moment has its user, a suspension made then is what OCSP answers;
- what died is restarted by what runs it (deploy/run.py, the ocsp supervisor), not by
  the harness; and the stack converges within the deadline.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

GAP_TARGET = 1.0
FLOW_TARGET = 2.0


@dataclass
class Tally:
    asked: int = 0
    present: int = 0
    missing: int = 0
    doubled: int = 0


@dataclass
class Result:
    scenario: str
    what: str
    keys: Tally = field(default_factory=Tally)
    states: Tally = field(default_factory=Tally)
    state_changes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    ocsp_gap: float | None = None
    ocsp_failures: dict[str, int] = field(default_factory=dict)
    gap_target: bool = True
    flow_key: float | None = None
    flow_ocsp: float | None = None
    flow_target: bool = False
    converge: float | None = None
    dead_lettered: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)   # the stack's warnings and errors meanwhile
    seconds: float = 0.0

    def fail(self, reason: str) -> None:
        self.failures.append(reason)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def fivexx(self) -> int:
        return len(self.server_errors)

    def judge(self) -> None:
        """Add a reason for every target this scenario missed."""
        for kind, tally in (("keys", self.keys), ("states", self.states)):
            if tally.missing:
                self.fail(f"{tally.missing} of {tally.asked} {kind} missing")
            if tally.doubled:
                self.fail(f"{tally.doubled} {kind} doubled")
        if self.server_errors:
            shown = sorted(set(self.server_errors))[:4]
            self.fail(f"{self.fivexx} answers 5xx (not 503 + Retry-After): {'; '.join(shown)}")
        if self.gap_target and self.ocsp_gap is not None and self.ocsp_gap > GAP_TARGET:
            self.fail(f"OCSP silent for {self.ocsp_gap:.2f} s (target ≤ {GAP_TARGET:g} s)")
        if self.flow_target:
            for what, value in (("key → external user", self.flow_key), ("suspension → OCSP", self.flow_ocsp)):
                if value is None:
                    self.fail(f"{what} after recovery: never within the deadline")
                elif value > FLOW_TARGET:
                    self.fail(f"{what} {value:.2f} s after recovery (target ≤ {FLOW_TARGET:g} s)")
        if self.converge is None:
            self.fail("did not converge within the deadline")

    @property
    def verdict(self) -> str:
        return "FAIL" if self.failures else "PASS"


def _seconds(value: float | None, dash: str = "—") -> str:
    return dash if value is None else f"{value:.2f} s"


def _errors(errors: dict[str, int]) -> str:
    return " ".join(f"{k}×{v}" for k, v in errors.items()) or "—"


def table(results: list[Result]) -> str:
    """The markdown table, then each scenario's reasons and notes."""
    head = ("| scenario | asked (keys/states) | present | missing | doubled | errors by status | 500s "
            "| OCSP longest gap | events after recovery (key/OCSP) | converged in | verdict |")
    lines = [head, "|" + "---|" * 11]
    for r in results:
        flow = (f"{_seconds(r.flow_key, 'never')} / {_seconds(r.flow_ocsp, 'never')}"
                if r.flow_target else "n/a")
        gap = _seconds(r.ocsp_gap) + ("" if r.gap_target else " (n/a)")
        lines.append(
            f"| {r.scenario} | {r.keys.asked}/{r.states.asked} | {r.keys.present}/{r.states.present} "
            f"| {r.keys.missing}/{r.states.missing} | {r.keys.doubled}/{r.states.doubled} | {_errors(r.errors)} "
            f"| {r.fivexx} | {gap} | {flow} | {_seconds(r.converge, 'not')} | **{r.verdict}** |")
    lines.append("")
    for r in results:
        lines.append(f"- **{r.scenario}** ({r.what}; {r.seconds:.0f} s, {r.state_changes} state changes"
                     + (f", OCSP probe failures {_errors(r.ocsp_failures)}" if r.ocsp_failures else "") + ")")
        for reason in r.failures:
            lines.append(f"  - FAIL: {reason}")
        for note in r.notes:
            lines.append(f"  - {note}")
        if r.dead_lettered:
            lines.append(f"  - dead-lettered here: {_errors(r.dead_lettered)}")
        if r.log:
            lines.append("  - the stack's log meanwhile: " + "; ".join(f"`{entry}`" for entry in r.log))
    return "\n".join(lines) + "\n"


def write(results: list[Result], directory: Path, preamble: str = "") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    md, js = directory / "ledger.md", directory / "ledger.json"
    md.write_text(f"# Fault suite ledger\n\n{preamble}\n{table(results)}")
    js.write_text(json.dumps([{**dataclasses.asdict(r), "verdict": r.verdict, "fivexx": r.fivexx}
                              for r in results], indent=1))
    return md, js
