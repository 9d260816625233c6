"""TensorBoard: every history value as a scalar, the command and settings as text, and the
hyper-parameters with the final metrics. Written with the `tensorboard` package (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

from mnistlab.training.callbacks.base import Callback

HPARAM_KEYS = ("model", "dataset", "optimizer", "lr", "batch_size", "epochs", "schedule", "weight_decay",
               "label_smoothing", "seed")


class TensorBoard(Callback):
    def __init__(self, log_dir: str | Path, command: str = "", settings_text: str = ""):
        self.log_dir, self.command, self.settings_text = Path(log_dir), command, settings_text
        self.writer = None

    def on_train_begin(self, trainer):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))
        if self.command:
            self.writer.add_text("command", f"`{self.command}`")
        if self.settings_text:
            self.writer.add_text("settings", "```\n" + self.settings_text + "\n```")

    def on_epoch_end(self, trainer, epoch, logs):
        for key, value in logs.items():
            if key != "epoch" and value is not None:
                group = "validation" if key.startswith("val_") else ("train" if key in ("loss", "accuracy")
                                                                       else "info")
                self.writer.add_scalar(f"{group}/{key.removeprefix('val_')}", value, epoch)
        self.writer.flush()

    def on_train_end(self, trainer, logs):
        from torch.utils.tensorboard.summary import hparams

        config = trainer.config
        params = {k: getattr(config, k) for k in HPARAM_KEYS}
        metrics = {f"hparam/{k}": float(v) for k, v in logs.items() if isinstance(v, (int, float))
                   and k.startswith(("test_", "best_val"))}
        if metrics:
            for summary in hparams(params, metrics):
                self.writer.file_writer.add_summary(summary)
            for key, value in metrics.items():
                self.writer.add_scalar(key, value)
        self.close()

    def on_exception(self, trainer, error):
        self.close()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
