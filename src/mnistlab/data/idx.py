"""Reader for the IDX format of MNIST-family files, gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in row-major order. Every check here turns a bad file into one
`DataError` that names the file, instead of a numpy traceback further down.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_IDX_BYTES = 2**30
MAX_IDX_ENV_VAR = "MNISTLAB_MAX_IDX_MB"

# type code -> numpy dtype (big-endian where it matters), from the IDX specification.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def max_idx_bytes() -> int:
    """The most bytes one IDX file may declare: $MNISTLAB_MAX_IDX_MB mebibytes, else 1 GiB (EMNIST's largest
    file is 550 MB; MNIST's 47 MB)."""
    value = os.environ.get(MAX_IDX_ENV_VAR)
    if not value:
        return DEFAULT_MAX_IDX_BYTES
    try:
        megabytes = float(value)
    except ValueError:
        raise DataError(f"${MAX_IDX_ENV_VAR} must be a number of mebibytes, got {value!r}") from None
    return int(megabytes * 2**20)


def declared_span(shape: tuple[int, ...], itemsize: int) -> int:
    """The bytes a declared shape spans, counting an empty dimension as 1: numpy refuses even an empty array
    whose other dimensions multiply past its index range, so those are judged by the same bound."""
    return math.prod(max(d, 1) for d in shape) * itemsize


def read_idx(raw: bytes, name: str = "<bytes>", max_bytes: int | None = None, hint: str = "") -> np.ndarray:
    """IDX bytes, gzipped or not, as an array of the file's shape and type (native byte order, writable).

    The header is read first and the values after it are inflated only as far as it declares, so a gzip
    bomb or a header declaring more than `max_bytes` (default: `max_idx_bytes()`) costs no memory: each is a
    `DataError` that names the file, as is a header that does not match the length.
    """
    max_bytes = max_idx_bytes() if max_bytes is None else max_bytes
    stream = gzip.GzipFile(fileobj=io.BytesIO(raw)) if raw[:2] == GZIP_MAGIC else io.BytesIO(raw)
    try:
        return _read_idx_stream(stream, name, max_bytes)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{name}: corrupt or truncated gzip data ({e}){hint}") from None


def _read_idx_stream(stream: BinaryIO, name: str, max_bytes: int) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(f"{name}: not an IDX file (only {len(magic)} bytes)")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: not an IDX file (bad magic number 0x{magic.hex()})")
    dtype, ndim = _IDX_DTYPES[magic[2]], magic[3]
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{name}: truncated IDX header ({4 + len(dims)} bytes, need {header})")
    shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    size = math.prod(shape) * dtype.itemsize  # Python integers: no overflow, whatever the header says
    if declared_span(shape, dtype.itemsize) > max_bytes:
        raise DataError(f"{name}: IDX header declares shape {shape}, more than the {max_bytes:,} bytes of values "
                        f"allowed; if the file is real, raise ${MAX_IDX_ENV_VAR} (mebibytes)")
    array = np.empty(shape, dtype)  # the values are inflated straight into it: no second copy of the set
    buffer, got = memoryview(array.reshape(-1).view(np.uint8)), 0
    while got < size and (n := stream.readinto(buffer[got:])):
        got += n
    if got < size:
        raise DataError(f"{name}: IDX file truncated: header says shape {shape} ({header + size} bytes) but the "
                        f"file has {header + got} bytes; replace it with a complete copy")
    if stream.read(1):
        raise DataError(f"{name}: IDX file has trailing bytes: header says shape {shape} ({header + size} "
                        f"bytes) but the file holds more; replace it with a complete copy")
    return array.astype(dtype.newbyteorder("="), copy=False)  # native byte order (uint8: the array itself)


def parse_idx(data: bytes, name: str = "<bytes>", max_bytes: int | None = None) -> np.ndarray:
    """Uncompressed IDX bytes as an array (see `read_idx`)."""
    return _read_idx_stream(io.BytesIO(data), name, max_idx_bytes() if max_bytes is None else max_bytes)


def load_idx(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """Load any IDX file (optionally gzipped) as a numpy array (see `read_idx` for `max_bytes`)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return read_idx(raw, str(path), max_bytes, "; delete the file so it can be downloaded again")
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
