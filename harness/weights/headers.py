"""Safetensors headers read as untrusted input: every size is checked against the file before it is believed.

A header is 8 bytes of length, then that many bytes of JSON naming each tensor's dtype, shape and byte range.
Whoever wrote the folder chose those numbers, so a length larger than the file, a shape whose element count does
not fit its byte range, or a range outside the data is one line naming the file, never a huge allocation or a
parameter count the store cannot hold.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from itertools import pairwise
from pathlib import Path

from harness.common.errors import HarnessError

# safetensors' own limit: a longer header is refused by the library itself.
MAX_HEADER_BYTES = 100_000_000
# Bits per element of every dtype the safetensors format defines (sub-byte types pack several per byte).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
}


def regular_size(file: Path) -> int:
    """The size of `file` if it is a regular file (after links); a device, fifo, socket or folder would hang a
    reader or yield endless bytes, so it is refused whatever the user allowed."""
    try:
        info = os.stat(file)
    except OSError as exc:
        raise HarnessError(f"{file}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise HarnessError(f"{file}: not a regular file (a folder, device, fifo or socket); refused")
    return info.st_size


def read_header(file: Path) -> dict[str, dict]:
    """The tensors of one safetensors file, {name: {dtype, shape, data_offsets}}, each checked against the file:
    known dtype, non-negative integer shape, a byte range inside the data that holds exactly shape x dtype, no two
    ranges overlapping."""
    size = regular_size(file)
    if size < 8:
        raise HarnessError(f"{file}: not a safetensors file ({size} bytes, shorter than its 8-byte header length)")
    with open(file, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > min(size - 8, MAX_HEADER_BYTES):
            raise HarnessError(f"{file}: not a safetensors file (its header claims {length} bytes; the file has "
                               f"{size - 8} after the length, and safetensors allows at most {MAX_HEADER_BYTES})")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise HarnessError(f"{file}: not a safetensors file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise HarnessError(f"{file}: not a safetensors file (its header is not a JSON object)")
    data_bytes = size - 8 - length
    tensors = {name: _tensor(file, name, entry, data_bytes) for name, entry in header.items() if name != "__metadata__"}
    ranges = sorted((t["data_offsets"][0], t["data_offsets"][1], name) for name, t in tensors.items())
    for (_, end, before), (begin, _, after) in pairwise(ranges):
        if begin < end:
            raise HarnessError(f"{file}: tensors '{before}' and '{after}' claim overlapping bytes")
    return tensors


def _tensor(file: Path, name: str, entry, data_bytes: int) -> dict:
    """One header entry, checked: its shape must be what its byte range holds, and the range inside the data."""
    where = f"{file}: tensor '{name}'"
    if not isinstance(entry, dict):
        raise HarnessError(f"{where}: expected an object with dtype, shape and data_offsets")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise HarnessError(f"{where}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise HarnessError(f"{where}: shape {shape!r} is not a list of non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
        raise HarnessError(f"{where}: data_offsets {offsets!r} are not a byte range inside the file's "
                           f"{data_bytes} data bytes")
    if _elements(shape, 8 * data_bytes) * DTYPE_BITS[dtype] != 8 * (offsets[1] - offsets[0]):
        raise HarnessError(f"{where}: shape {shape} of {dtype} does not fit its {offsets[1] - offsets[0]} bytes")
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


def _elements(shape: list[int], cap: int) -> int:
    """prod(shape), stopping once it passes `cap` (no tensor in the file can hold more), so a shape of a million
    huge dimensions is not a million-digit multiplication."""
    if 0 in shape:
        return 0
    total = 1
    for dim in shape:
        total *= dim
        if total > cap:
            return cap + 1
    return total
