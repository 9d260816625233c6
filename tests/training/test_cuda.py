"""Training on a CUDA GPU (skipped where there is none): bf16 and channels_last, a reload on the CPU that
answers as the GPU did, and compiled steps replayed as CUDA graphs."""

import numpy as np
import pytest
import torch

import mnistlab
from mnistlab.data import load_dataset
from mnistlab.training import build_config, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FAST = dict(model="fastnet", subset=20000, epochs=2, batch_size=256, lr=0.4, validation="none", tensorboard=False,
            device="cuda")


def test_a_cuda_run_reloads_on_the_cpu_with_the_same_answers(tmp_path, data_root):
    run = train(build_config(overrides=FAST), tmp_path, progress="quiet")
    metrics = run.metrics()
    assert metrics["device"].startswith("cuda") and metrics["test_accuracy"] > 0.97
    test = load_dataset("mnist")
    on_cpu = mnistlab.load(run.path).predict(test.test_images)
    on_gpu = mnistlab.load(run.path, device="cuda").predict(test.test_images)
    # float32 on both (TF32 off on the GPU): at most a borderline image or two may round the other way
    assert (on_cpu != on_gpu).sum() <= 2
    assert abs(np.mean(on_cpu == test.test_labels) - metrics["test_accuracy"]) <= 2 / len(test.test_labels)


def test_cuda_training_uses_bf16_and_channels_last(tmp_path, data_root):
    from mnistlab.training import Trainer, prepare_training

    config = build_config(overrides=FAST)
    _, model, data = prepare_training(config)
    trainer = Trainer(model, config, data)
    assert trainer.autocast_dtype == torch.bfloat16 and data.train_x.is_cuda
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_steps_replayed_as_cuda_graphs_train_and_keep_their_metrics(tmp_path, data_root, precision):
    # 20000 / 256 leaves a last batch of 32: a second graph; the running accuracy must read every step's own
    # logits, not ones a later replay overwrote
    config = build_config(overrides={**FAST, "compile": True, "compile_mode": "reduce-overhead",
                                     "precision": precision})
    run = train(config, tmp_path, progress="quiet")
    history = run.history()
    assert all(np.isfinite(r["loss"]) for r in history)
    assert history[-1]["accuracy"] > 0.95 and run.metrics()["test_accuracy"] > 0.97


@pytest.mark.parametrize("augment", [{}, {"rotate": 8.0, "shift": 0.06}])
def test_whole_steps_as_cuda_graphs_train_like_eager_steps(tmp_path, data_root, augment):
    # 20000 / 256 leaves a last batch of 32, which gets a graph of its own
    eager = train(build_config(overrides={**FAST, "augment": augment}), tmp_path, progress="quiet")
    graphed = train(build_config(overrides={**FAST, "augment": augment, "cuda_graph": True}), tmp_path,
                    progress="quiet")
    for a, b in zip(eager.history(), graphed.history()):
        assert abs(a["loss"] - b["loss"]) < 0.05 and abs(a["accuracy"] - b["accuracy"]) < 0.01
    assert abs(eager.metrics()["test_accuracy"] - graphed.metrics()["test_accuracy"]) < 0.005
    assert graphed.metrics()["test_accuracy"] > 0.97


def test_a_graphed_run_resumes(tmp_path, data_root):
    from mnistlab.training import resume
    from mnistlab.training.callbacks import Callback

    class StopBeforeTheLastEpoch(Callback):
        def on_epoch_begin(self, trainer, epoch):
            if epoch == 3:
                raise KeyboardInterrupt

    config = build_config(overrides={**FAST, "cuda_graph": True, "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, progress="quiet", callbacks=[StopBeforeTheLastEpoch()])
    resumed = resume(tmp_path / "mnist-fastnet-1", progress="quiet")
    assert [r["epoch"] for r in resumed.history()] == [1, 2, 3] and resumed.metrics()["test_accuracy"] > 0.97


def test_graphed_adam_with_dropout_trains(tmp_path, data_root):
    # Adam replays only with its step counters on the GPU (capturable); dropout draws inside the graph
    config = build_config(overrides={**FAST, "model": "keras-cnn", "optimizer": "adam", "lr": 2e-3, "batch_size": 128,
                                     "cuda_graph": True})
    assert train(config, tmp_path, progress="quiet").metrics()["test_accuracy"] > 0.96
