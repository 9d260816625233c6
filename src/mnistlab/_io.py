"""Atomic file writing: a reader never sees a half-written file, even after a crash or Ctrl-C."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes owner-only files; what we write gets the mode a plain open() would give (read once, at import,
# as the umask can only be read by setting it)
FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode) as f:
            os.chmod(tmp, FILE_MODE)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike, missing: str, hint: str = "") -> Any:
    """A JSON file's content; a missing file raises MnistlabError(`missing`), a damaged one (not JSON, not
    text) an error that names the file, with `hint` (what to do) after it."""
    from mnistlab.errors import MnistlabError

    path = Path(path)
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise MnistlabError(missing) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MnistlabError(f"{path}: not valid JSON ({e}){hint}") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
