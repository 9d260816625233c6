"""History: one row of logs per epoch, kept in memory and written to the run folder as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mnistlab._io import write_text
from mnistlab.training.callbacks.base import Callback

COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_s")


class History(Callback):
    def __init__(self, csv_path: str | Path | None = None):
        self.rows: list[dict[str, float]] = []
        self.csv_path = Path(csv_path) if csv_path else None

    def on_epoch_end(self, trainer, epoch, logs):
        self.rows.append(dict(logs))
        if self.csv_path:
            write_text(self.csv_path, history_to_csv(self.rows))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state):
        self.rows = [dict(r) for r in state["rows"]]


def history_to_csv(rows: list[dict[str, float]]) -> str:
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in writer.fieldnames})
    return out.getvalue()


def read_history_csv(path: str | Path) -> list[dict[str, float]]:
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: (float(v) if v not in ("", None) else None) for k, v in row.items()})
    return rows
