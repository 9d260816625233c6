"""Hostile inputs made to order: gzip bombs, headers that declare too much, and a memory meter."""

import os
import struct
import tracemalloc
import zlib
from contextlib import contextmanager

FUZZ_EXAMPLES = int(os.environ.get("MNISTLAB_FUZZ_EXAMPLES", "1500"))  # per fuzzer; the long mode: 20000


@contextmanager
def peak_memory(limit_bytes: int):
    """Fail when the Python and numpy allocations inside the block peak above `limit_bytes`."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= limit_bytes, f"peaked at {peak / 2**20:.1f} MiB, more than {limit_bytes / 2**20:.1f} MiB"


def idx_header(code: int, shape) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape)


def gzip_bomb(header: bytes, zeros: int) -> bytes:
    """A gzip stream of `header` then `zeros` zero bytes, compressed chunk by chunk (about 1 kB per MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    out = [compressor.compress(header)]
    chunk = bytes(2**20)
    for _ in range(zeros // len(chunk)):
        out.append(compressor.compress(chunk))
    out.append(compressor.compress(bytes(zeros % len(chunk))) + compressor.flush())
    return b"".join(out)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height greyscale pixels (its data is one row)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(width + 1))) + \
        chunk(b"IEND", b"")


def npy_declaring(shape, dtype="<u1") -> bytes:
    """An .npy header declaring `shape` with no values after it."""
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple(shape)}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
