"""What the stack's own log said during a scenario: its warnings and errors, counted,
each with one example of what went wrong, so that a FAIL in the ledger comes with the
services' side of the story (the 500's exception, the relay's retries, a worker's death)."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

# A plain (non-structlog) traceback's last line: "package.module.SomeError: message".
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Closed|Refused|Reset|Timeout)\w*)(?::\s*(.*))?$")
_RUNNER_LINE = re.compile(r"^siui: (service .*)$")


class LogMark:
    """Where the stack's logs stood at a moment, to read only what came after."""

    def __init__(self, logs: list[Path]):
        self.index = len(logs) - 1
        self.offset = logs[-1].stat().st_size if logs and logs[-1].exists() else 0

    def since(self, logs: list[Path]) -> str:
        parts = []
        for i, path in enumerate(logs[max(self.index, 0):], start=max(self.index, 0)):
            with open(path, "rb") as log:
                if i == self.index:
                    log.seek(self.offset)
                parts.append(log.read().decode(errors="replace"))
        return "".join(parts)


def _reason(event: dict) -> str:
    if event.get("exception"):
        return event["exception"].strip().splitlines()[-1]
    for key in ("error", "reason", "exit_code"):
        if key in event:
            return f"{key}={event[key]}"
    return ""


def summarize(text: str, limit: int = 8) -> list[str]:
    """``["keygen request_failed ×1: asyncpg...: cannot switch ...", ...]``, most frequent first."""
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    severe: set[str] = set()  # errors, the runner's words and tracebacks before warnings
    for line in text.splitlines():
        line = line.rstrip()
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("level") not in ("warning", "error", "critical"):
                continue
            key = f"{event.get('service', '?')} {event.get('event', '?')}"
            if event.get("event") == "request_failed":
                key += f" {event.get('method', '')} {event.get('path', '')}"
            if event["level"] != "warning":
                severe.add(key)
        elif (runner := _RUNNER_LINE.match(line)) is not None:
            key, event = f"runner: {runner.group(1)}", {}
            severe.add(key)
        elif (exc := _EXCEPTION_LINE.match(line)) is not None:
            key, event = f"traceback {exc.group(1).rsplit('.', 1)[-1]}", {"error": exc.group(2) or ""}
        else:
            continue
        counts[key] += 1
        example.setdefault(key, _reason(event))
    out = []
    ranked = sorted(counts.items(), key=lambda kv: (kv[0] not in severe, -kv[1]))
    for key, n in ranked[:limit]:
        why = example.get(key) or ""
        out.append(f"{key} ×{n}" + (f": {why[:150]}" if why else ""))
    if len(counts) > limit:
        out.append(f"… and {len(counts) - limit} other kinds")
    return out
