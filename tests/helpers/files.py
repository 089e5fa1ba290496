"""Broken files as users meet them: PNGs whose pixel data is corrupt behind valid chunk checksums."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def corrupt_png_data(path: Path) -> None:
    """Scramble the compressed pixel data of a PNG and fix its CRC: verify() passes, decoding fails."""
    data = bytearray(Path(path).read_bytes())
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4:at])[0]
    start = at + 4
    for i in range(start + 2, start + length - 4):
        data[i] ^= 0x5A
    crc = zlib.crc32(bytes(data[at:start + length])) & 0xFFFFFFFF
    data[start + length:start + length + 4] = struct.pack(">I", crc)
    Path(path).write_bytes(bytes(data))
