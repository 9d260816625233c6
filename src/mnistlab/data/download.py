"""Downloading dataset files: mirrors tried in turn with retries, SHA-256 verified, written atomically."""

from __future__ import annotations

import hashlib
import http.client
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

from mnistlab._io import atomic_write
from mnistlab.errors import DataError

_CHUNK = 1 << 16


class _Mismatch(Exception):
    pass




def _fetch(url: str, dest: Path, expected_sha256: str | None, timeout: float, progress,
           check: Callable[[bytes, str], object] | None = None) -> None:
    """Stream `url` into `dest` atomically; the file only appears if the whole body arrived and matches its
    checksum or, where none is known, passes `check` (its content and name; it raises `DataError`)."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        task = progress.add_task(dest.name, total=total) if progress is not None else None
        try:
            with atomic_write(dest, "w+b") as f:
                received = 0
                try:
                    while chunk := response.read(_CHUNK):
                        f.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if task is not None:
                            progress.update(task, completed=received)
                except http.client.IncompleteRead as e:
                    received += len(e.partial)
                if total is not None and received != total:
                    raise urllib.error.URLError(f"connection closed after {received} of {total} bytes")
                if expected_sha256 and digest.hexdigest() != expected_sha256:
                    raise _Mismatch(f"SHA-256 {digest.hexdigest()} does not match the published {expected_sha256}")
                if not expected_sha256 and check is not None:
                    f.seek(0)
                    try:
                        check(f.read(), dest.name)
                    except DataError as e:
                        raise _Mismatch(f"no checksum is known, and the file is not whole: {e}") from None
        finally:
            if task is not None:
                progress.remove_task(task)


def download_files(
    files: Iterable[str],
    mirrors: Iterable[str],
    dest_dir: Path,
    sha256: dict[str, str] | None = None,
    retries: int = 2,
    timeout: float = 30.0,
    show_progress: bool | None = None,
    check: Callable[[bytes, str], object] | None = None,
) -> list[Path]:
    """Download each file name from the first mirror that serves it intact, into `dest_dir`.

    Intact: its SHA-256 matches `sha256[name]`, or, for a file without one, its content passes `check`
    (a callable of the content and the name that raises `DataError`, e.g. an IDX length check).

    Each mirror is tried `retries` times (network errors back off briefly; a checksum mismatch moves on to
    the next mirror at once). Raises `DataError` listing what every mirror answered when none worked.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    mirrors, sha256 = list(mirrors), sha256 or {}
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    progress = (
        Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                 transient=True)
        if show_progress else None
    )
    done = []
    if progress is not None:
        progress.start()
    try:
        for name in files:
            failures: list[str] = []
            if not _download_one(name, mirrors, dest_dir, sha256.get(name), retries, timeout, progress, failures,
                                 check):
                raise DataError(f"could not download {name} into {dest_dir}: " + "; ".join(failures))
            done.append(dest_dir / name)
    finally:
        if progress is not None:
            progress.stop()
    return done


def _download_one(name, mirrors, dest_dir, expected, retries, timeout, progress, failures, check) -> bool:
    """Try every mirror in turn; record each failure; True once one file arrived intact."""
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        for attempt in range(1, retries + 1):
            try:
                _fetch(url, dest_dir / name, expected, timeout, progress, check)
                return True
            except _Mismatch as e:
                failures.append(f"{url}: {e}")
                break  # a wrong file will not get better on retry: next mirror
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                if attempt < retries:
                    time.sleep(0.2 * attempt)
                else:  # one line per mirror: what its last attempt answered
                    tries = f" ({retries} attempts)" if retries > 1 else ""
                    failures.append(f"{url}: {getattr(e, 'reason', None) or e}{tries}")
    return False
