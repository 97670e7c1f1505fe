"""Where the server URL and the token come from, as ``mlflow`` and ``det`` do it.

First what the caller passes, then the environment (``DIGITS_URL``, ``DIGITS_TOKEN``),
then the config file: ``$DIGITS_CONFIG``, else ``$XDG_CONFIG_HOME/digits/config.json``
(``~/.config/digits/config.json``). ``digits login`` writes that file, readable by its
owner only, since it holds a token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from digits.client.errors import ConfigurationError

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    if os.environ.get("DIGITS_CONFIG"):
        return Path(os.environ["DIGITS_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "digits" / "config.json"


def read_file(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a JSON object.")
    return {key: str(value) for key, value in data.items() if value is not None}


def write_file(values: dict[str, str], path: Path | None = None) -> Path:
    """Save ``values`` (merged into what the file holds), readable by its owner only."""
    path = path or config_path()
    merged = {**read_file(path), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(merged, out, indent=1)
    os.replace(path.with_suffix(".tmp"), path)
    return path


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None


def resolve(url: str | None = None, token: str | None = None) -> Settings:
    """The server URL and token to use: arguments, then the environment, then the file."""
    stored = read_file()
    url = url or os.environ.get("DIGITS_URL") or stored.get("url") or DEFAULT_URL
    token = token or os.environ.get("DIGITS_TOKEN") or stored.get("token")
    return Settings(url=url.rstrip("/"), token=token)
