"""Fuzz the readers of users' files (IDX, .npy, pictures) with Hypothesis: every input must come back as
valid data or as mnistlab's own `DataError`; anything else is a failure. Prints a JSON summary.

    python tests/reliability/fuzz.py --examples 20000      # the long mode (each of the three readers)

`test_fuzz.py` runs it in a process of its own, whose peak memory it bounds.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import resource
import struct
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistlab.data.inputs import InputLimits, model_input, read_input
from mnistlab.errors import DataError

LIMITS = InputLimits(max_pixels=16_000_000, max_array_bytes=64 * 2**20, max_images=10_000)  # the server's
IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]


class Tally:
    def __init__(self):
        self.tried = self.valid = self.errors = 0
        self.failures: list[str] = []

    def run(self, data: bytes, name: str) -> None:
        self.tried += 1
        try:
            batch = model_input(*read_input(data, name, LIMITS), name, (28, 28), True, LIMITS)
            assert batch.ndim == 3 and batch.shape[1:] == (28, 28) and 1 <= len(batch) <= LIMITS.max_images
            self.valid += 1
        except DataError as e:
            assert name in str(e) or "blank" in str(e), f"the error does not name the file: {e}"
            self.errors += 1
        except Exception:  # anything else is a hole
            if len(self.failures) < 5:
                self.failures.append(f"{name} {data[:64]!r}...: {traceback.format_exc(limit=3)}")
            self.failures.append("")

    def summary(self) -> dict:
        return {"tried": self.tried, "valid": self.valid, "errors": self.errors,
                "failures": len([f for f in self.failures if not f]), "examples": [f for f in self.failures if f]}


def dims(max_dim: int) -> st.SearchStrategy:
    return st.one_of(st.integers(0, 64), st.integers(0, max_dim), st.sampled_from([28, 784, 65536, 2**31, 2**32 - 1]))


def consistent_idx(code: int, shape: list[int], seed: int, packed: bool) -> bytes:
    """A well-formed IDX file of random values (so that valid inputs are tried too)."""
    count = int(np.prod(shape)) * {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[code]
    raw = bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + \
        np.random.default_rng(seed).bytes(count)
    return gzip.compress(raw, 1) if packed else raw


def consistent_npy(dtype: str, shape: list[int], seed: int) -> bytes:
    out = io.BytesIO()
    np.save(out, np.frombuffer(np.random.default_rng(seed).bytes(int(np.prod(shape)) * np.dtype(dtype).itemsize),
                               dtype).reshape(shape))
    return out.getvalue()


image_shapes = st.one_of(st.tuples(st.integers(0, 4), st.just(28), st.just(28)).map(list),
                         st.tuples(st.integers(0, 4), st.just(784)).map(list), st.just([28, 28]),
                         st.tuples(st.integers(0, 3), st.just(1), st.just(28), st.just(28)).map(list),
                         st.lists(st.integers(0, 30), min_size=1, max_size=3))
random_idx_files = st.builds(
    lambda code, shape, body, extra, packed: (
        (lambda raw: gzip.compress(raw, 1) if packed else raw)(
            bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + body[:extra])),
    st.one_of(st.sampled_from(IDX_CODES), st.integers(0, 255)),
    st.lists(dims(2**32 - 1), min_size=0, max_size=5),
    st.binary(min_size=0, max_size=4096),
    st.integers(0, 4096),
    st.booleans(),
)
idx_files = st.one_of(random_idx_files, st.builds(consistent_idx, st.sampled_from(IDX_CODES), image_shapes,
                                                   st.integers(0, 2**32 - 1), st.booleans()))
random_npy_files = st.builds(
    lambda descr, shape, body, version: (
        (lambda header: b"\x93NUMPY" + bytes(version) + (struct.pack("<H", len(header)) if version[0] == 1
                                                          else struct.pack("<I", len(header))) + header + body)(
            (f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(shape)}, }}").encode() + b"\n")),
    st.sampled_from(["|u1", "<f4", "<f8", "<i8", ">i2", "|b1", "<c8", "|O", "<U3", "|V4", "<M8[s]", "bad"]),
    st.lists(dims(10**7), min_size=0, max_size=4),
    st.binary(min_size=0, max_size=4096),
    st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]),
)
npy_files = st.one_of(random_npy_files, st.builds(consistent_npy, st.sampled_from(["|u1", "<f4", "<f8", "<i8", ">i2"]),
                                                  image_shapes, st.integers(0, 2**32 - 1)))


def picture_seeds() -> list[tuple[bytes, str]]:
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8))
    seeds = []
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("GIF", ".gif"), ("TIFF", ".tif"),
                        ("WEBP", ".webp")):
        out = io.BytesIO()
        image.save(out, fmt)
        seeds.append((out.getvalue(), suffix))
    return seeds


def mutate(seed: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(seed[:max(cut, 1)])
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data)


def main(examples: int) -> dict:
    warnings.simplefilter("ignore")  # Pillow's complaints about damaged files; the outcome is what counts
    tallies = {"idx": Tally(), "npy": Tally(), "pictures": Tally()}
    fuzz = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

    @fuzz
    @given(idx_files)
    def idx(data):
        tallies["idx"].run(data, "fuzzed-idx.gz" if data[:2] == b"\x1f\x8b" else "fuzzed-idx")

    @fuzz
    @given(npy_files)
    def npy(data):
        tallies["npy"].run(data, "fuzzed.npy")

    seeds = picture_seeds()

    @fuzz
    @given(st.sampled_from(range(len(seeds))), st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)),
                                                          max_size=8), st.integers(0, 2**16))
    def pictures(which, flips, cut):
        seed, suffix = seeds[which]
        tallies["pictures"].run(mutate(seed, flips, cut), f"fuzzed{suffix}")

    for fuzzer in (idx, npy, pictures):
        fuzzer()
    out = {name: tally.summary() for name, tally in tallies.items()}
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory: Linux's VmHWM, which (unlike ru_maxrss, kept across exec) counts
    this program alone and not the process that started it."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20_000, help="inputs per reader")
    summary = main(parser.parse_args().examples)
    print(json.dumps(summary, indent=2))
    sys.exit(1 if any(v["failures"] for k, v in summary.items() if isinstance(v, dict)) else 0)
