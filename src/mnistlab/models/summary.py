"""A Keras-style summary of a model (a zoo model or any `nn.Module`): each layer, its output shape and
parameters, then the totals."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mnistlab.models.base import Classifier, Normalize


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    params: int


def _own_counts(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) numbers of this module alone; like Keras, BatchNorm's moving statistics
    count as non-trainable and the normalization constants (preprocessing) do not count."""
    trainable = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters(recurse=False) if not p.requires_grad)
    if not isinstance(module, Normalize):
        frozen += sum(b.numel() for n, b in module.named_buffers(recurse=False) if n != "num_batches_tracked")
    return trainable, frozen


@torch.no_grad()
def summarize(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> tuple[list[LayerRow], dict[str, int]]:
    """Run one dummy batch through `model` and record every leaf layer's output shape and parameters. A zoo
    model knows its input; another module takes one image of `input_shape` (default (1, 28, 28))."""
    if input_shape is None:
        input_shape = (1, *model.image_shape) if isinstance(model, Classifier) else (1, 28, 28)
    prefix = "net." if isinstance(model, Classifier) else ""
    rows: list[LayerRow] = []
    totals = {"total": 0, "trainable": 0, "non_trainable": 0}
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue

        def record(mod, _inputs, output, name=name):
            trainable, frozen = _own_counts(mod)
            first = output if isinstance(output, torch.Tensor) else next(
                (o for o in output if isinstance(o, torch.Tensor)), None)  # an RNN answers a tuple
            shape = (None, *first.shape[1:]) if first is not None else ("?",)
            rows.append(LayerRow(name.removeprefix(prefix), type(mod).__name__, shape, trainable + frozen))

        hooks.append(module.register_forward_hook(record))
    for module in model.modules():
        trainable, frozen = _own_counts(module)
        totals["trainable"] += trainable
        totals["non_trainable"] += frozen
    totals["total"] = totals["trainable"] + totals["non_trainable"]
    was_training = model.training
    model.eval()
    try:
        parameter = next(model.parameters(), None)
        model(torch.zeros(2, *input_shape, device=parameter.device if parameter is not None else "cpu"))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows, totals


def format_summary(model: nn.Module, title: str = "", input_shape: tuple[int, ...] | None = None) -> str:
    """The summary as plain text, Keras's layout (shapes are PyTorch's: channels first)."""
    rows, totals = summarize(model, input_shape)
    table = [("Layer (type)", "Output Shape", "Param #")]
    table += [(f"{r.name} ({r.kind})", str(r.output_shape).replace("None,", "None, ").replace("  ", " "),
               f"{r.params:,}") for r in rows]
    widths = [max(len(row[i]) for row in table) + 3 for i in range(3)]
    width = sum(widths)
    line = lambda row: "".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    out = [f'Model: "{title}"'] if title else []
    out += ["_" * width, line(table[0]), "=" * width]
    for i, row in enumerate(table[1:]):
        out.append(line(row))
        out.append("=" * width if i == len(table) - 2 else "_" * width)
    out += [f"Total params: {totals['total']:,}", f"Trainable params: {totals['trainable']:,}",
            f"Non-trainable params: {totals['non_trainable']:,}"]
    if isinstance(model, Classifier):
        out.append(f"Input: raw pixels 0-255, normalized inside the model ({model.normalize.mode})")
    return "\n".join(out)


class ModelSummary(str):
    """The summary text, shown as such by print() and by a notebook (not as a quoted string)."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"
