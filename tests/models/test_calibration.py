"""Calibration: the error that measures it, the temperature that mends it, and the temperature's journey
through checkpoints and exports."""

import json

import numpy as np
import pytest
import torch

from mnistlab.errors import MnistlabError
from mnistlab.models import create_model
from mnistlab.models.calibration import (
    TEMPERATURE_RANGE,
    expected_calibration_error,
    fit_temperature,
    logits_ece,
)
from mnistlab.models.io import load_model, record_temperature, save_model


def test_calibration_error_by_hand():
    # one image per bin: |1 - 0.9|, |1 - 0.8|, |0 - 0.6| (wrong), |1 - 0.7|, averaged
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert expected_calibration_error(proba, np.array([0, 1, 1, 1])) == pytest.approx(0.3)
    # confident and right every time, or 60% sure and right 3 times in 5: calibrated
    assert expected_calibration_error(np.array([[1.0, 0.0]] * 4), np.zeros(4, np.int64)) == 0.0
    sixty = np.array([[0.6, 0.4]] * 5)
    assert expected_calibration_error(sixty, np.array([0, 0, 0, 1, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(sixty, np.array([0, 1, 1, 1, 1])) == pytest.approx(0.4)


def _drawn(scale: float, n: int = 20000, seed: int = 0):
    """Labels drawn from softmax(z), and the logits z * scale a miscalibrated network would give."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 10, generator=generator) * 2.0
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=generator).squeeze(1)
    return z * scale, labels


@pytest.mark.parametrize("scale", [0.4, 1.0, 3.0])
def test_fit_temperature_finds_the_miscalibration_and_mends_it(scale):
    logits, labels = _drawn(scale)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(scale, rel=0.05)
    if scale != 1.0:
        assert logits_ece(logits, labels, temperature) < 0.02 < logits_ece(logits, labels)
        assert (torch.nn.functional.cross_entropy(logits / temperature, labels)
                < torch.nn.functional.cross_entropy(logits, labels))


def test_fit_temperature_works_on_inference_tensors_and_stays_in_range():
    logits, labels = _drawn(2.0, n=2000)
    with torch.inference_mode():
        inference_logits = logits * 1.0
    assert fit_temperature(inference_logits, labels) == pytest.approx(2.0, rel=0.1)
    # every answer right: sharper is always better, until the loss is too small to matter
    separable, classes = torch.eye(10).repeat(50, 1) * 5, torch.arange(10).repeat(50)
    assert TEMPERATURE_RANGE[0] <= fit_temperature(separable, classes) < 0.5
    # every answer wrong: flatter is always better, and the range holds it
    assert fit_temperature(separable, (classes + 1) % 10) == TEMPERATURE_RANGE[1]
    with pytest.raises(MnistlabError, match="no"):
        fit_temperature(torch.empty(0, 10), torch.empty(0, dtype=torch.long))


def test_a_classifier_divides_its_logits_by_its_temperature_and_keeps_it_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model("mlp").eval()
    x = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    plain = model(x)
    model.temperature = 0.5
    assert torch.allclose(model(x), plain / 0.5)
    assert plain.argmax(1).tolist() == model(x).argmax(1).tolist()
    path = save_model(model, tmp_path / "m")
    loaded, meta = load_model(path)
    assert meta["temperature"] == 0.5 and loaded.temperature == 0.5
    assert torch.allclose(loaded(x), model(x))
    record_temperature(path, 2.0)
    assert load_model(path)[0].temperature == 2.0
    # a description from before calibration has none: 1
    description = json.loads(path.with_suffix(".json").read_text())
    del description["temperature"]
    path.with_suffix(".json").write_text(json.dumps(description))
    assert load_model(path)[0].temperature == 1.0


@pytest.mark.parametrize("bad", [0, -1.0, "hot", True, [1.0]])
def test_a_damaged_temperature_is_one_clear_error(tmp_path, bad):
    path = save_model(create_model("mlp"), tmp_path / "m")
    description = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**description, "temperature": bad}))
    with pytest.raises(MnistlabError, match=r"m\.json: the temperature .* must be a positive number"):
        load_model(path)
