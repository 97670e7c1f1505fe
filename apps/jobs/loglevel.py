"""The level of a line a job process wrote to stderr: TensorFlow and Python logging write
their information lines there too, and those are not errors."""

import re

#: absl / TensorFlow C++: "I0000 00:00:17… file.cc:12] …" or "2026-… 19:00:00.1: I tensorflow/…".
_ABSL = re.compile(r"^([IWEF])\d{4} |^\S+ \S+: ([IWEF]) ")
#: Python logging's default formats: "INFO:name:…", "… - WARNING - …".
_WORD = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b")
_LETTERS = {"I": "info", "W": "warning", "E": "error", "F": "error"}
_WORDS = {"DEBUG": "info", "INFO": "info", "WARN": "warning", "WARNING": "warning"}


def stderr_level(line: str) -> str:
    """The line's own marker's level when it has one; "error" otherwise (tracebacks)."""
    match = _ABSL.match(line)
    if match:
        return _LETTERS[match.group(1) or match.group(2)]
    match = _WORD.search(line[:60])
    if match:
        return _WORDS.get(match.group(1), "error")
    return "error"
