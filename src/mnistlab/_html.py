"""Small HTML pieces for what mnistlab shows in a notebook (`_repr_html_`) and in its reports: a table of
name-value rows and pictures embedded as data URIs, so nothing refers to a file or a server."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any, Sequence


def table(rows: Sequence[tuple[str, Any]], title: str = "") -> str:
    """A two-column table (name, value); values are escaped as text."""
    caption = f"<caption style='text-align:left'><b>{html.escape(title)}</b></caption>" if title else ""
    cells = "".join(f"<tr><th style='text-align:left'>{html.escape(str(name))}</th>"
                    f"<td style='text-align:left'>{html.escape(str(value))}</td></tr>" for name, value in rows)
    return f"<table>{caption}{cells}</table>"


def png(source: str | os.PathLike | bytes | Any, alt: str = "") -> str:
    """An <img> of a PNG file, PNG bytes, or a matplotlib Figure."""
    if hasattr(source, "savefig"):
        buffer = io.BytesIO()
        source.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        source = buffer.getvalue()
    elif not isinstance(source, bytes):
        alt = alt or Path(source).stem
        source = Path(source).read_bytes()
    data = base64.b64encode(source).decode()
    return f'<img alt="{html.escape(alt)}" style="max-width:100%" src="data:image/png;base64,{data}">'
