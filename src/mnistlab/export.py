"""Export: a trained model (or ensemble) as ONNX, a `torch.export` program (.pt2), TorchScript or safetensors.

ONNX, .pt2 and TorchScript files hold the whole pipeline: input raw pixels, float32 (N, 1, H, W) with values
0-255; output class probabilities (N, classes) (softmax, averaged over an ensemble's members). The batch
size is dynamic. They run without mnistlab (onnxruntime; `torch.export.load(path).module()`;
torch.jit.load). ONNX goes through torch's current exporter (`dynamo=True`, from the same `torch.export`
graph), falling back to the TorchScript-based one where that fails, with a warning that says why; .pt2 is
the format torch now recommends over TorchScript. A safetensors export holds the weights (`members.<i>.` per
member) and, in its header, what `mnistlab.load` needs to rebuild it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from mnistlab._io import atomic_write
from mnistlab.choices import EXPORT_FORMATS
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.predict import Predictor


class ProbabilityModel(nn.Module):
    """Raw pixels (N, 1, H, W) -> mean of the members' softmax (N, classes)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = [torch.softmax(member(x), dim=1) for member in self.members]
        return torch.stack(probabilities).mean(dim=0)


def export(predictor: Predictor, fmt: str, out: str | os.PathLike) -> Path:
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; give the file to write, e.g. {out / ('model.' + EXPORT_FORMATS[fmt])}")
    module = ProbabilityModel([m.float().eval().to("cpu") for m in predictor.models]).eval()
    example = torch.zeros(2, 1, *predictor.image_shape)
    metadata = {"class_names": json.dumps(list(predictor.class_names)), "input": "raw pixels 0-255, float32 "
                f"(N, 1, {predictor.image_shape[0]}, {predictor.image_shape[1]})", "output": "probabilities"}
    if predictor.meta.get("dataset"):
        metadata["dataset"] = str(predictor.meta["dataset"])
    if fmt == "pt2":
        program = _exported_program(module, example)
        with atomic_write(out) as f:
            torch.export.save(program, f, extra_files={"mnistlab.json": json.dumps(metadata)})
    elif fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks are constant per input size
            traced = torch.jit.trace(module, example)
        with atomic_write(out) as f:
            torch.jit.save(traced, f, _extra_files={"mnistlab.json": json.dumps(metadata)})
    elif fmt == "onnx":
        _export_onnx(module, example, out, metadata)
    else:
        from safetensors.torch import save

        state = {k: v.contiguous() for k, v in module.state_dict().items()}
        models = [m.spec for m in predictor.models]
        with atomic_write(out) as f:
            f.write(save(state, metadata={**metadata, "output": "weights of mnistlab models",
                                          "models": json.dumps(models),
                                          "temperatures": json.dumps([m.temperature for m in predictor.models]),
                                          "tta_mirror": json.dumps(list(predictor.tta_mirror))}))
    return out


def _exported_program(module: nn.Module, example: torch.Tensor):
    """The model as a `torch.export` program whose batch size is free (at least 1)."""
    batch = torch.export.Dim("batch", min=1, max=2**20)
    with torch.no_grad():
        return torch.export.export(module, (example,), dynamic_shapes={"x": {0: batch}}, strict=False)


def _export_onnx(module: nn.Module, example: torch.Tensor, out: Path, metadata: dict) -> None:
    try:
        import onnx
    except ImportError:
        raise MnistlabError("ONNX export needs the onnx package: pip install 'mnistlab[onnx]'") from None
    names = {"input_names": ["pixels"], "output_names": ["probabilities"]}
    quiet = logging.getLogger("torch.onnx")  # it logs each optional library it looks for and lacks
    level = quiet.level
    try:  # torch's current exporter, from the torch.export graph (needs onnxscript)
        quiet.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its progress notes; a failure raises
            program = torch.onnx.export(_exported_program(module, example), (example,), dynamo=True,
                                        opset_version=18, verbose=False, **names)
        model = program.model_proto
    except Exception as error:  # an op it cannot translate yet, or no onnxscript: the TorchScript exporter
        warnings.warn(f"torch's dynamo ONNX exporter failed ({type(error).__name__}: {str(error)[:200]}); "
                      "exported with the TorchScript-based one instead", stacklevel=2)
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning, and the legacy exporter's deprecation
            torch.onnx.export(module, (example,), buffer, dynamic_axes={"pixels": {0: "batch"},
                              "probabilities": {0: "batch"}}, opset_version=17, dynamo=False, **names)
        model = onnx.load_model_from_string(buffer.getvalue())
    finally:
        quiet.setLevel(level)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    with atomic_write(out) as f:  # built in memory, then written like every other export: atomically
        f.write(model.SerializeToString())
