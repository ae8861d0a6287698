"""Reads the records of an offline W&B run file (run-<id>.wandb), so tests can check what the backend wrote.

The file is W&B's LevelDB-style log: a 7-byte header (':W&B', magic, version), then 32 KiB blocks of chunks,
each with a 7-byte header (CRC32, little-endian length, type: 1 full, 2 first, 3 middle, 4 last).
"""

import struct
from collections.abc import Iterator
from pathlib import Path

_BLOCK = 32768
_HEADER = 7


def read_records(path: Path) -> Iterator:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    position, pending = _HEADER, b""
    while position + _HEADER <= len(data):
        left = _BLOCK - position % _BLOCK
        if left < _HEADER:  # block trailer padding
            position += left
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position : position + _HEADER])
        chunk = data[position + _HEADER : position + _HEADER + length]
        position += _HEADER + length
        if kind == 0:
            continue
        pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record
