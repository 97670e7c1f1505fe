"""TFRecord files, written without TensorFlow.

The format is TensorFlow's (``tf.data.TFRecordDataset`` reads it): each record
is ``uint64 length, uint32 masked_crc32c(length), data, uint32
masked_crc32c(data)``, little-endian. Writing it here keeps TensorFlow (a
multi-second import and a poor citizen of ``fork``) out of dataset jobs and
lets the web process read one record by offset for the explore page.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import google_crc32c

_MASK_DELTA = 0xA282EAD8
HEADER = 12  # length (8) + its crc (4)
FOOTER = 4


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One framed record."""
    length = struct.pack("<Q", len(data))
    return b"".join(
        (length, struct.pack("<I", _masked_crc(length)), data, struct.pack("<I", _masked_crc(data)))
    )


def read_at(fh: BinaryIO, offset: int) -> bytes:
    """The record starting at ``offset``, with both checksums verified."""
    fh.seek(offset)
    header = fh.read(HEADER)
    if len(header) != HEADER:
        raise ValueError(f"no record at offset {offset}")
    length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
    if _masked_crc(length_bytes) != length_crc:
        raise ValueError(f"corrupt record length at offset {offset}")
    (length,) = struct.unpack("<Q", length_bytes)
    data = fh.read(length)
    (data_crc,) = struct.unpack("<I", fh.read(FOOTER))
    if len(data) != length or _masked_crc(data) != data_crc:
        raise ValueError(f"corrupt record data at offset {offset}")
    return data
