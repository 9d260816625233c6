"""Real (small) trainings on the shared MNIST: run folders, determinism, resume, failures, accuracy."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mnistlab.config import read_toml
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.runs import RunFolder, list_runs
from mnistlab.training import TrainConfig, build_config, resume, train
from mnistlab.training.callbacks import Callback

QUICK = dict(subset=3000, epochs=2, batch_size=64, tensorboard=False, tta=False)


def small(**kwargs) -> TrainConfig:
    return build_config(overrides={"model": "mlp", "lr": 0.05, **QUICK, **kwargs})


def comparable(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]


def test_run_folder_holds_everything(tmp_path):
    run = train(small(tensorboard=True), tmp_path, progress="quiet", command="mnistlab train --test")
    names = {p.name for p in run.path.iterdir()}
    assert {"settings.toml", "command.txt", "environment.json", "run.json", "history.csv", "metrics.json",
            "checkpoints", "curves.png"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert {p.name for p in run.checkpoints.iterdir()} == {"best.safetensors", "best.json", "last.safetensors",
                                                           "last.json", "last-state.pt"}
    assert run.name == "mnist-mlp-1" and run.state() == "finished"
    assert (run.path / "command.txt").read_text() == "mnistlab train --test\n"
    env = json.loads((run.path / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    metrics = run.metrics()
    assert metrics["test_accuracy"] > 0.85 and metrics["epochs"] == 2 and metrics["parameters"] == 269_322
    assert [r["epoch"] for r in run.history()] == [1, 2]
    best = json.loads((run.checkpoints / "best.json").read_text())
    assert best["model"]["name"] == "mlp" and best["class_names"][3] == "3" and best["dataset"] == "mnist"
    # the saved settings read back as a config repeat the run
    assert build_config(run.path / "settings.toml") == small(tensorboard=True)
    second = train(small(), tmp_path, progress="quiet")
    assert second.name == "mnist-mlp-2"
    rows = list_runs(tmp_path)
    assert [r["name"] for r in rows] == ["mnist-mlp-1", "mnist-mlp-2"] and rows[0]["state"] == "finished"


def test_seed_repeats_a_run_exactly(tmp_path):
    config = small(model="keras-cnn", augment={"rotate": 10, "shift": 0.1}, lr=0.02)
    a = train(config, tmp_path, progress="quiet")
    b = train(config, tmp_path, progress="quiet")
    assert comparable(a.history()) == comparable(b.history())
    wa, wb = load_file(a.checkpoint("last")), load_file(b.checkpoint("last"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(small(model="keras-cnn", augment={"rotate": 10, "shift": 0.1}, lr=0.02, seed=1), tmp_path,
              progress="quiet")
    assert comparable(c.history()) != comparable(a.history())


class InterruptAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, trainer, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_after_interrupt_matches_the_uninterrupted_run(tmp_path):
    config = small(model="keras-cnn", epochs=3, lr=0.02, augment={"rotate": 5}, schedule="plateau",
                   plateau_patience=1, early_stopping=5)
    whole = train(config, tmp_path / "a", progress="quiet")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "b", progress="quiet", callbacks=[InterruptAt(3)])
    interrupted = RunFolder.open(tmp_path / "b" / "mnist-keras-cnn-1")
    assert interrupted.state() == "interrupted" and len(interrupted.history()) == 2
    saved_seconds = torch.load(interrupted.checkpoints / "last-state.pt", weights_only=True)["train_seconds"]
    resumed = resume(interrupted.path, progress="quiet")
    assert resumed.state() == "finished"
    assert comparable(resumed.history()) == comparable(whole.history())
    wa, wb = load_file(whole.checkpoint("last")), load_file(resumed.checkpoint("last"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed.metrics()["test_accuracy"] == whole.metrics()["test_accuracy"]
    # the training time counts both sessions: the first's two epochs, then the resumed third
    assert resumed.metrics()["train_seconds"] >= saved_seconds + resumed.history()[-1]["seconds"]
    with pytest.raises(MnistlabError, match="already finished"):
        resume(resumed.path)


def test_resume_before_the_first_epoch_ended_starts_over(tmp_path, capsys):
    config = small(model="keras-cnn", epochs=2, lr=0.02)
    whole = train(config, tmp_path / "a", progress="quiet")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "b", progress="quiet", callbacks=[InterruptAt(1)])
    assert "interrupted (before the first epoch ended); continue with: mnistlab train --resume" in (
        capsys.readouterr().err)
    resumed = resume(tmp_path / "b" / "mnist-keras-cnn-1", progress="quiet")
    assert resumed.state() == "finished" and comparable(resumed.history()) == comparable(whole.history())


def test_diverging_loss_stops_with_a_clear_message_and_keeps_checkpoints(tmp_path):
    class Explode(Callback):
        def on_epoch_begin(self, trainer, epoch):
            if epoch == 2:
                for group in trainer.optimizer.param_groups:
                    group["lr"] = float("inf")
                trainer.base_lr = float("inf")

    with pytest.raises(MnistlabError, match="training loss became nan in epoch 2; lower the learning rate"):
        train(small(), tmp_path, progress="quiet", callbacks=[Explode()])
    run = RunFolder.open(tmp_path / "mnist-mlp-1")
    assert run.state() == "failed" and "nan" in run.status()["error"]
    assert run.checkpoint("best").exists() and json.loads((run.checkpoints / "best.json").read_text())["epoch"] == 1


@pytest.mark.parametrize("bad, message", [
    ({"model": "vgg"}, "unknown model 'vgg'"),
    ({"model": "mlp", "model_options": {"depth": 3}}, "depth"),
    ({"dataset": "no-such-folder/"}, "no-such-folder"),
])
def test_bad_settings_fail_before_a_run_folder_exists(tmp_path, bad, message):
    with pytest.raises(MnistlabError, match=message):
        train(build_config(overrides={**QUICK, **bad}), tmp_path / "runs", progress="quiet")
    assert not (tmp_path / "runs").exists()


def test_validation_modes(tmp_path):
    # in float32: on a GPU validation would otherwise run in bf16 and the test in float32
    on_test = train(small(validation="test", epochs=1, precision="fp32"), tmp_path, progress="quiet")
    assert on_test.history()[0]["val_accuracy"] == pytest.approx(on_test.metrics()["test_accuracy"])
    none = train(small(validation="none", epochs=1), tmp_path, progress="quiet")
    assert none.history()[0]["val_loss"] is None and none.metrics()["best_val_accuracy"] is None
    assert none.checkpoint("best").exists()


def test_tensorboard_events_hold_the_history(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(small(tensorboard=True, epochs=2), tmp_path, progress="quiet")
    events = EventAccumulator(str(run.path))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/accuracy", "validation/loss", "validation/accuracy", "info/lr"} <= set(tags)
    assert len(events.Scalars("validation/accuracy")) == 2


@pytest.mark.slow
def test_keras_cnn_one_epoch_on_full_mnist(tmp_path):
    """The Keras tutorial CNN, one real epoch on all of MNIST: >= 98% test accuracy."""
    config = build_config(overrides={"model": "keras-cnn", "epochs": 1, "optimizer": "adam", "lr": 1e-3,
                                     "batch_size": 32, "tta": False,
                                     "schedule": "constant", "weight_decay": 0.0, "label_smoothing": 0.0,
                                     "tensorboard": False})
    run = train(config, tmp_path, progress="quiet")
    assert run.metrics()["test_accuracy"] >= 0.98
    assert read_toml(run.path / "settings.toml")["model"] == "keras-cnn"


class ManualAverage(Callback):
    """Keeps its own exponential moving average of the raw weights, step by step."""

    def __init__(self, decay):
        self.decay, self.average = decay, None

    def on_batch_end(self, trainer, step, running):
        weights = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
        if self.average is None:
            self.average = weights
        else:
            for k, v in weights.items():
                self.average[k].mul_(self.decay).add_(v, alpha=1 - self.decay)


def test_ema_validates_saves_and_tests_the_weight_average(tmp_path):
    manual = ManualAverage(0.9)
    run = train(small(ema=0.9), tmp_path, progress="quiet", callbacks=[manual])
    saved = load_file(run.checkpoint("last"))
    for name, average in manual.average.items():
        assert torch.allclose(saved[name], average.cpu(), atol=1e-6), name
    raw = train(small(), tmp_path, progress="quiet")
    assert not torch.equal(saved["net.1.weight"], load_file(raw.checkpoint("last"))["net.1.weight"])
    assert run.metrics()["test_accuracy"] > 0.85


def test_resume_with_ema_matches_the_uninterrupted_run(tmp_path):
    config = small(model="fastnet", ema=0.95, epochs=3)
    whole = train(config, tmp_path / "a", progress="quiet")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "b", progress="quiet", callbacks=[InterruptAt(3)])
    resumed = resume(tmp_path / "b" / "mnist-fastnet-1", progress="quiet")
    wa, wb = load_file(whole.checkpoint("last")), load_file(resumed.checkpoint("last"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed.metrics()["test_accuracy"] == whole.metrics()["test_accuracy"]


def test_running_metrics_weigh_each_batch_by_its_size():
    from mnistlab.training.trainer import RunningMetrics

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 10, generator=generator)
    labels = torch.randint(0, 10, (300,), generator=generator)
    running = RunningMetrics(steps=3, images=3 * 128, classes=10)
    for start, stop in ((0, 128), (128, 256), (256, 300)):  # a short last batch
        batch_loss = torch.nn.functional.cross_entropy(logits[start:stop], labels[start:stop])
        running.add(batch_loss, logits[start:stop], labels[start:stop])
        if stop == 128:  # read in the middle of the epoch, as the progress bar does
            assert running.read()[1] == (logits[:128].argmax(1) == labels[:128]).sum().item() / 128
    loss, accuracy, seen = running.read()
    assert seen == 300
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert accuracy == (logits.argmax(1) == labels).sum().item() / 300


def test_running_metrics_keep_no_step_tensor_alive():
    # each step's small tensors, kept to the end of the epoch, would pin the memory freed around them
    import weakref

    from mnistlab.training.trainer import RunningMetrics

    running = RunningMetrics(steps=1, images=4, classes=3)
    logits, labels = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0], [2.0, 0, 0]]), torch.tensor([0, 1, 2, 1])
    loss = torch.nn.functional.cross_entropy(logits, labels)
    kept = [weakref.ref(t) for t in (loss, logits, labels)]
    running.add(loss, logits, labels)
    expected = loss.item()
    del loss, logits, labels
    assert all(ref() is None for ref in kept)
    assert running.read() == (pytest.approx(expected), 0.75, 4)


def test_last_batch_scaled_is_a_smaller_step_and_drop_skips_it(tmp_path):
    # one epoch of 100 images with batch_size 200 is a single, partial batch; plain SGD is linear in lr * gradient,
    # so scaling its loss by 100/200 is the same step as half the learning rate
    plain = dict(subset=100, batch_size=200, epochs=1, optimizer="sgd", momentum=0.0, weight_decay=0.0,
                 label_smoothing=0.0, schedule="constant", validation="none")
    scaled = train(small(**plain, lr=0.1, last_batch="scaled"), tmp_path, progress="quiet")
    halved = train(small(**plain, lr=0.05), tmp_path, progress="quiet")
    full = train(small(**plain, lr=0.1), tmp_path, progress="quiet")
    ws, wh, wf = (load_file(r.checkpoint("last")) for r in (scaled, halved, full))
    assert all(torch.allclose(ws[k], wh[k], atol=1e-6) for k in ws)
    assert not all(torch.allclose(ws[k], wf[k], atol=1e-6) for k in ws)
    with pytest.raises(MnistlabError, match="leaves no batch"):
        train(small(**plain, last_batch="drop"), tmp_path / "dropped", progress="quiet")
    assert not (tmp_path / "dropped").exists()
    with pytest.raises(MnistlabError, match="last_batch must be one of mean, scaled, drop"):
        small(last_batch="half")


def test_models_without_batch_norm_get_a_learning_rate_they_train_at(tmp_path):
    """The defaults' one-cycle SGD peaks at lr 0.8, where LeNet-5 diverges (11% after 2 epochs); its
    registry entry asks for 0.1, under any recipe, config file or flag."""
    from mnistlab.recipes import load_recipe

    assert build_config(overrides={"model": "lenet5"}).lr == 0.1
    assert build_config().lr == build_config(overrides={"model": "allconv"}).lr == TrainConfig.lr == 0.8
    assert build_config(overrides={"model": "lenet5", "lr": 0.3}).lr == 0.3
    assert build_config(None, {"model": "cnn"}, load_recipe("fast").settings).lr == 0.4  # the recipe's own
    run = train(build_config(overrides={"model": "lenet5", "epochs": 2, "subset": 20000, "tensorboard": False}),
                tmp_path, progress="quiet")
    assert run.metrics()["test_accuracy"] > 0.85


def test_cuda_graph_settings_that_cannot_work_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="cuda_graph needs a CUDA device, and this run is on cpu"):
        train(small(cuda_graph=True, device="cpu"), tmp_path, progress="quiet")
    assert not list(tmp_path.iterdir())  # nothing started
    with pytest.raises(ConfigError, match="does not work with compile or ema: add --no-cuda-graph"):
        small(cuda_graph=True, ema=0.99)


def _with_most_bytes_saved_for_backward(run):
    """What `run()` returns, and the most bytes of tensors autograd held for backward at once meanwhile."""
    import weakref

    held, most = {}, [0]

    def pack(tensor):
        if id(tensor) not in held:
            held[id(tensor)] = tensor.numel() * tensor.element_size()
            weakref.finalize(tensor, held.pop, id(tensor), None)
            most[0] = max(most[0], sum(held.values()))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = run()
    return result, most[0]


def test_micro_batches_make_the_same_step_holding_a_fraction_of_the_activations(tmp_path):
    """Without batch norm a batch in parts is the same step: the parts' gradients add up to the batch's, the
    epoch's last, smaller batch (600 = 9 x 64 + 24), L2 and label smoothing included. (Over many more steps
    float rounding can flip a max-pool's choice, and the runs part by a learning-rate step.)"""
    common = dict(model="lenet5", precision="fp32", lr=0.05, l2=1e-4, subset=600, epochs=1, validation="none")
    runs, held = {}, {}
    for parts in (1, 4):
        config = small(**common, micro_batches=parts)
        runs[parts], held[parts] = _with_most_bytes_saved_for_backward(
            lambda config=config, parts=parts: train(config, tmp_path / str(parts), progress="quiet"))
    whole, split = (load_file(runs[parts].checkpoint("last")) for parts in (1, 4))
    assert all(torch.allclose(whole[k], split[k], atol=1e-6) for k in whole)
    assert runs[4].history()[0]["loss"] == pytest.approx(runs[1].history()[0]["loss"], rel=1e-5)
    assert held[4] < 0.5 * held[1]  # a quarter of the activations, and the weights as before
    with pytest.raises(ConfigError, match="micro_batches must be at least 1"):
        small(micro_batches=0)
    with pytest.raises(ConfigError, match="does not split batches: add --no-cuda-graph"):
        small(micro_batches=2, cuda_graph=True)


def test_the_trainer_has_what_callbacks_may_use(tmp_path):
    from mnistlab.training.callbacks import TrainerProtocol

    class Check(Callback):
        def on_train_begin(self, trainer):
            self.conforms = isinstance(trainer, TrainerProtocol)

    check = Check()
    train(small(epochs=1), tmp_path, progress="quiet", callbacks=[check])
    assert check.conforms


def test_resume_with_more_epochs_trains_a_finished_run_further_as_if_in_one_go(tmp_path):
    plain = {"schedule": "constant", "warmup": 0.0, "model": "linear", "lr": 0.1}
    whole = train(small(**plain, epochs=3), tmp_path / "a", progress="quiet")
    short = train(small(**plain, epochs=2), tmp_path / "b", progress="quiet")
    with pytest.raises(MnistlabError, match="has already finished its 2 epochs; train it further with --resume"):
        resume(short.path)
    with pytest.raises(ConfigError, match="lr cannot change when a run is resumed.*--init-from"):
        resume(short.path, changes={"epochs": 3, "lr": 0.5})
    longer = resume(short.path, progress="quiet", changes={"epochs": 3})
    assert longer.state() == "finished" and read_toml(longer.path / "settings.toml")["epochs"] == 3
    assert comparable(longer.history()) == comparable(whole.history())
    wa, wb = load_file(whole.checkpoint("last")), load_file(longer.checkpoint("last"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_init_from_starts_a_new_run_from_another_runs_weights(tmp_path):
    source = train(small(model="linear", lr=0.1), tmp_path, progress="quiet")

    class FirstWeights(Callback):
        def on_train_begin(self, trainer):
            self.state = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    first = FirstWeights()
    config = build_config(overrides={**QUICK, "init_from": str(source.path), "epochs": 1})
    assert config.model == "linear"  # the source's model, as no other was named
    tuned = train(config, tmp_path, progress="quiet", callbacks=[first])
    best = load_file(source.checkpoint("best"))
    assert all(torch.equal(best[k], first.state[k]) for k in best)  # weights and normalization
    assert read_toml(tuned.path / "settings.toml")["init_from"] == str(source.path)
    with pytest.raises(ConfigError, match=r"init_from .*: its model is linear .* and the one to fill is mlp"):
        train(small(model="mlp", init_from=str(source.path)), tmp_path, progress="quiet")


def test_running_metrics_give_the_plain_cross_entropy_beside_a_smoothed_loss():
    from mnistlab.training.trainer import RunningMetrics

    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (200,), generator=generator)
    # a confident, mostly right model, whose smoothed loss is far above its cross-entropy
    logits = torch.randn(200, 10, generator=generator) + 6 * torch.nn.functional.one_hot(labels, 10)
    running = RunningMetrics(steps=2, images=2 * 128, classes=10)
    for start, stop in ((0, 128), (128, 200)):
        smoothed = torch.nn.functional.cross_entropy(logits[start:stop], labels[start:stop], label_smoothing=0.1)
        running.add(smoothed, logits[start:stop], labels[start:stop])
    plain = torch.nn.functional.cross_entropy(logits, labels).item()
    assert running.cross_entropy() == pytest.approx(plain, rel=1e-5)
    assert running.read()[0] > 3 * plain  # smoothing adds the distance to the uniform distribution
    assert RunningMetrics(steps=2, images=256, classes=10).cross_entropy() == 0.0


def test_a_smoothed_run_logs_and_prints_its_plain_cross_entropy(tmp_path, capsys):
    smoothed = train(small(label_smoothing=0.1, epochs=1), tmp_path, progress="plain")
    row = smoothed.history()[0]
    assert row["cross_entropy"] < row["loss"]
    assert f"(label-smoothed; cross-entropy {row['cross_entropy']:.4f})" in capsys.readouterr().err
    plain = train(small(label_smoothing=0.0, epochs=1), tmp_path, progress="plain")
    assert plain.history()[0].get("cross_entropy") is None and "label-smoothed" not in capsys.readouterr().err


def test_the_default_model_trains_with_augmentation_unless_told_otherwise(capsys):
    from mnistlab.cli import main

    augmented = build_config().augment
    assert (augmented.rotate, augmented.zoom, augmented.shift) == (10.0, 0.1, 0.08)
    assert not build_config(overrides={"augment": "none"}).augment.active
    assert build_config(overrides={"augment": {"shift": 0.1}}).augment.rotate == 10.0  # merged key by key
    assert not build_config(overrides={"model": "allconv"}).augment.active  # the default model's own setting
    assert main(["train", "--augment", "none", "--print-settings"]) == 0
    assert "rotate = 0.0" in capsys.readouterr().out
    assert main(["train", "--augment", "zoom=0.2", "--print-settings"]) == 0
    assert "rotate = 10.0" in (out := capsys.readouterr().out) and "zoom = 0.2" in out


def test_the_figures_are_drawn_from_the_test_pass_not_a_second_one(tmp_path, monkeypatch):
    from mnistlab.training import pipeline

    def second_pass(*args, **kwargs):
        raise AssertionError("the test set was run through the model again for the figures")

    monkeypatch.setattr(pipeline, "batched_logits", second_pass)
    run = train(small(epochs=1, tta=False), tmp_path, progress="quiet")
    assert (run.path / "confusion.png").is_file() and (run.path / "mistakes.png").is_file()


def test_a_run_ends_by_fitting_its_temperature_on_the_validation_split(tmp_path, capsys, mnist):
    import mnistlab
    from mnistlab.models.calibration import expected_calibration_error

    # label smoothing makes the network underconfident: the fitted temperature sharpens (T < 1)
    run = train(small(label_smoothing=0.1), tmp_path, progress="plain")
    metrics = run.metrics()
    temperature = metrics["temperature"]
    assert temperature < 1.0 and metrics["val_ece"] < metrics["val_ece_uncalibrated"] / 2
    assert f"calibrated: logits divided by {temperature:.3f}" in capsys.readouterr().err
    assert json.loads((run.checkpoints / "best.json").read_text())["temperature"] == temperature
    # what a user loads gives the calibrated probabilities; the answers are the network's own
    predictor = mnistlab.load(run.path)
    images = mnist.test_images[:500]
    calibrated = predictor.predict_proba(images)
    model = predictor.models[0]
    model.temperature = 1.0
    with torch.inference_mode():
        raw = model(torch.from_numpy(images)).float()
    assert np.allclose(calibrated, torch.softmax(raw / temperature, 1).numpy(), atol=1e-5)
    assert (calibrated.argmax(1) == raw.argmax(1).numpy()).all()
    assert calibrated.max(1).mean() > torch.softmax(raw, 1).max(1).values.mean().item()
    # and it holds on the test set, which the fit never saw: confidences closer to accuracy than the raw ones
    labels = mnist.test_labels[:500]
    raw_ece = expected_calibration_error(torch.softmax(raw, 1).numpy(), labels)
    assert expected_calibration_error(calibrated, labels) < raw_ece / 1.5
    assert 0 <= metrics["test_ece"] < raw_ece
    # never on the test set, and not when told not to
    for settings in ({"validation": "test"}, {"calibrate": False}, {"validation": "none"}):
        uncalibrated = train(small(label_smoothing=0.1, epochs=1, **settings), tmp_path, progress="quiet")
        assert "temperature" not in uncalibrated.metrics()
        assert json.loads((uncalibrated.checkpoints / "best.json").read_text())["temperature"] == 1.0


def test_the_test_and_its_test_time_augmentation_are_what_the_saved_model_answers(tmp_path, mnist):
    """One pass gives both: the plain test and the TTA test equal a fresh float32 pass of the best checkpoint
    (calibrated: its temperature is in the checkpoint)."""
    from mnistlab.models.inference import batched_logits, tta_logits
    from mnistlab.models.io import load_model
    from mnistlab.runs import best_checkpoint

    run = train(small(model="fastnet", epochs=1, tta=True, figures=False), tmp_path, progress="quiet")
    metrics, (model, _) = run.metrics(), load_model(best_checkpoint(run.path))
    images, labels = torch.from_numpy(mnist.test_images), torch.from_numpy(mnist.test_labels).long()
    for key, logits in (("", batched_logits(model, images, 500)), ("_tta", tta_logits(model, images, 500))):
        assert metrics[f"test_accuracy{key}"] == pytest.approx((logits.argmax(1) == labels).float().mean().item(),
                                                               abs=1e-4)
        assert metrics[f"test_loss{key}"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(),
                                                           rel=1e-4)
    assert metrics["test_accuracy_tta"] != metrics["test_accuracy"] or metrics["test_loss_tta"] != metrics["test_loss"]
