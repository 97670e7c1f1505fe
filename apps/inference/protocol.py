"""Messages between the web process, the inference server and its model process.

A message is a JSON header followed by the NumPy arrays it names, each as ``.npy``
bytes read back with ``allow_pickle=False``: nothing a model process sends can make
the server unpickle (and so run) anything. Framing is ``multiprocessing.connection``'s
(``send_bytes``/``recv_bytes``), over a pipe or an authenticated socket.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

#: Largest header or array accepted (bytes); a layer view or a batch stays far below.
MAX_PART = 256 * 2**20


class ProtocolError(RuntimeError):
    """The other side sent something that is not a message of this protocol."""


def send(conn, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
    arrays = arrays or {}
    conn.send_bytes(json.dumps({**header, "arrays": list(arrays)}).encode())
    for array in arrays.values():
        out = io.BytesIO()
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
        conn.send_bytes(out.getbuffer())


def recv(conn) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        header = json.loads(conn.recv_bytes(MAX_PART))
        names = header.pop("arrays", [])
        if not isinstance(header, dict) or not isinstance(names, list):
            raise ProtocolError("malformed header")
        arrays = {
            str(name): np.load(io.BytesIO(conn.recv_bytes(MAX_PART)), allow_pickle=False)
            for name in names
        }
    except (ValueError, TypeError, OSError) as exc:  # bad JSON, npy, or a message too long
        if isinstance(exc, (EOFError, ConnectionError)):
            raise
        raise ProtocolError(str(exc)) from exc
    return header, arrays
