"""What the CLI prints: tables and messages for people, JSON for scripts, and the live
progress line of a watched job (carriage-return updates on a terminal, plain lines
elsewhere, so a CI log stays readable)."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from digits.client.errors import APIError
from digits.client.objects import Event


class Printer:
    def __init__(self, json_output: bool = False, stream=None, errors=None):
        self.json_output = json_output
        self.stream = stream or sys.stdout
        self.errors = errors or sys.stderr

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def result(self, data: Any, text: str) -> None:
        self.say(json.dumps(data, indent=1, default=str) if self.json_output else text)

    def table(self, rows: list[Any], columns: list[str]) -> None:
        if self.json_output:
            self.say(json.dumps([_raw(row) for row in rows], indent=1, default=str))
            return
        cells = [[_cell(_get(row, column)) for column in columns] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        for line in [columns, *cells]:
            self.say(
                "  ".join(
                    value.ljust(width) for value, width in zip(line, widths, strict=True)
                ).rstrip()
            )

    def event(self, event: Event) -> None:
        self.say(json.dumps(dataclasses.asdict(event), default=str))

    def error(self, exc: APIError) -> None:
        if self.json_output:
            body = {"status": exc.status, "detail": exc.detail, "errors": exc.field_errors}
            print(json.dumps(body, default=str), file=self.errors, flush=True)
            return
        if exc.detail:
            self.fail(f"{exc.status}: {exc.detail}")
        for field, message in exc.field_messages():
            self.fail(f"{field}: {message}")
        if not exc.detail and not exc.field_messages():
            self.fail(str(exc))

    def fail(self, text: str) -> None:
        print(f"error: {text}", file=self.errors, flush=True)


class ProgressLine:
    """One status line: ``label [#####.....] 42%  epoch 3  loss 0.12  val_accuracy 0.97``."""

    WIDTH = 24

    def __init__(self, printer: Printer, label: str):
        self.printer = printer
        self.label = label
        self.tty = printer.errors.isatty() and not printer.json_output
        self.fraction = 0.0
        self.text = ""
        self.metrics: dict[str, float] = {}
        self.step: int | None = None
        self.shown = ""
        self.printed: tuple = ()

    def bytes(self, sent: int, total: int) -> None:
        self.fraction = sent / total if total else 1.0
        self.text = f"{sent / 1e6:.1f}/{total / 1e6:.1f} MB"
        self._show(final=sent >= total, quiet=True)

    def event(self, event: Event, logs: bool = False) -> None:
        data = event.data
        if event.type == "progress":
            self.fraction = float(data.get("progress") or 0.0)
            self.text = data.get("text") or self.text
        elif event.type == "status":
            self.text = data.get("text") or data.get("status", "")
        elif event.type == "metric":
            self.step = data.get("step", self.step)
            self.metrics[data["series"]] = data["value"]
        elif event.type == "log" and (logs or data.get("level") == "error"):
            self._print(f"[{data.get('level', 'info')}] {data.get('message', '')}")
            return
        self._show(final=bool(event.final_status))

    def line(self) -> str:
        filled = int(self.fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        shown = [f"{k} {v:.4g}" for k, v in sorted(self.metrics.items()) if k != "steps_per_epoch"]
        step = [f"step {self.step}"] if self.step is not None and shown else []
        parts = [self.label, f"[{bar}] {self.fraction:4.0%}", self.text, *step, *shown]
        return "  ".join(p for p in parts if p)

    def close(self) -> None:
        if self.tty and self.shown:
            print(file=self.printer.errors, flush=True)
            self.shown = ""

    def _show(self, final: bool = False, quiet: bool = False) -> None:
        """Redraw the line on a terminal; elsewhere print it when the status text or the
        step changes (``quiet``: only at the end), not on every byte or metric."""
        if self.printer.json_output:
            return
        line = self.line()
        if line == self.shown:
            return
        self.shown = line
        if self.tty:
            print("\r\033[K" + line, end="", file=self.printer.errors, flush=True)
            return
        key = (self.text, self.step)
        if final or (not quiet and key != self.printed):
            self.printed = key
            print(line, file=self.printer.errors, flush=True)

    def _print(self, text: str) -> None:
        if self.tty and self.shown:
            print("\r\033[K" + text, file=self.printer.errors, flush=True)
            self._show()
        else:
            print(text, file=self.printer.errors, flush=True)


def _raw(row: Any) -> Any:
    return getattr(row, "raw", row)


def _get(row: Any, column: str) -> Any:
    value: Any = _raw(row)
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
