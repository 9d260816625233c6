import pytest
import torch

from mnistlab.errors import ConfigError
from mnistlab.models import create_model
from mnistlab.settings import TrainConfig
from mnistlab.training.optim import build_optimizer, kernel_parameters, lr_factor


def test_schedules_are_pure_functions_of_the_step():
    steps = 100
    onecycle = TrainConfig(epochs=4, schedule="onecycle", warmup=1.0)
    values = [lr_factor(s, steps, onecycle) for s in range(400)]
    assert values[0] == pytest.approx(0.01) and max(values) == pytest.approx(1.0)
    assert values.index(max(values)) == 99 and values[-1] < 0.01
    cosine = TrainConfig(epochs=4, schedule="cosine", warmup=0.0, final_lr_fraction=0.1)
    assert lr_factor(0, steps, cosine) == pytest.approx(1.0)
    assert lr_factor(399, steps, cosine) == pytest.approx(0.1, abs=1e-3)
    step = TrainConfig(epochs=30, schedule="step", step_epochs=10, step_gamma=0.5)
    assert [lr_factor(e * steps, steps, step) for e in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor(1234, steps, TrainConfig(schedule="constant")) == 1.0


def test_weight_decay_only_on_kernels():
    model = create_model("allconv")
    kernels = kernel_parameters(model)
    assert len(kernels) == 7 and all(p.dim() > 1 for p in kernels)
    optimizer = build_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.01), torch.device("cpu"))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "lbfgs"}, "optimizer must be one of"), ({"lr": -1.0}, "lr must be positive"),
    ({"val_split": 1.5}, "val_split"), ({"schedule": "warm"}, "schedule must be one of"),
])
def test_bad_settings_are_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)
