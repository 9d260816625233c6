"""History: one row of logs per epoch, kept in memory and written to the run folder (its `history.csv`),
with the run's heartbeat (when its process last finished an epoch)."""

from __future__ import annotations

import time
from typing import Any

from mnistlab.runs import RunFolder
from mnistlab.training.callbacks.base import Callback


class History(Callback):
    """`rows` holds every epoch's logs; with a run folder, they are written there after each epoch, and the
    run's status records the moment (`heartbeat`), so that a run on another machine shows when it was last
    seen alive."""

    def __init__(self, run: RunFolder | None = None):
        self.rows: list[dict[str, float]] = []
        self.run = run

    def on_epoch_end(self, trainer, epoch, logs):
        self.rows.append(dict(logs))
        if self.run is not None:
            self.run.write_history(self.rows)
            self.run.set_state("running", heartbeat=time.time())

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state):
        self.rows = [dict(r) for r in state["rows"]]
