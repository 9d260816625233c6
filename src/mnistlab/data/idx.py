"""Reader for the IDX format of MNIST-family files, gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in row-major order. Every check here turns a bad file into one
`DataError` that names the file, instead of a numpy traceback further down.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from mnistlab.errors import DataError

# type code -> numpy dtype (big-endian where it matters), from the IDX specification.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """Return the content of `path`, decompressed when it is gzipped (detected by its magic bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return gunzip_if_gzipped(raw, str(path), "; delete the file so it can be downloaded again")


def gunzip_if_gzipped(raw: bytes, name: str, hint: str = "") -> bytes:
    """`raw` decompressed when it starts with the gzip magic bytes, else `raw` itself."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{name}: corrupt or truncated gzip data ({e}){hint}") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array of the file's shape and type, checking the header against the length."""
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file (only {len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: IDX file {problem}: header says shape {shape} ({expected} bytes) but the file has "
            f"{len(data)} bytes; replace it with a complete copy"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)  # a writable array in native byte order


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Load any IDX file (optionally gzipped) as a numpy array."""
    return parse_idx(read_file_bytes(path), str(path))


def load_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Load an IDX image file: uint8 array of shape (N, H, W), values 0-255."""
    array = load_idx(path)
    if array.ndim != 3 or array.dtype != np.uint8:
        raise DataError(
            f"{path}: expected an IDX file of uint8 images (N, H, W), found {array.dtype} of shape {array.shape}"
        )
    return array


def load_idx_labels(path: str | os.PathLike, num_classes: int | None = None) -> np.ndarray:
    """Load an IDX label file: uint8 array of shape (N,), each value below `num_classes` when given."""
    array = load_idx(path)
    if array.ndim != 1 or array.dtype != np.uint8:
        raise DataError(
            f"{path}: expected an IDX file of uint8 labels (N,), found {array.dtype} of shape {array.shape}"
        )
    if num_classes is not None and array.size and int(array.max()) >= num_classes:
        raise DataError(f"{path}: label {int(array.max())} is out of range for {num_classes} classes")
    return array


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (used to write IDX files, e.g. a subset of a dataset)."""
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder("=")
    if dtype not in codes:
        raise DataError(f"cannot encode {array.dtype} as IDX; supported: uint8, int8, int16, int32, float32, float64")
    code = codes[dtype]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array).astype(_IDX_DTYPES[code], copy=False).tobytes()
