"""Every registered model, walked through the registry: a new model is tested the moment it is registered."""

import numpy as np
import pytest
import torch

from mnistlab.errors import ConfigError
from mnistlab.models import as_image_batch, count_parameters, create_model, list_models
from mnistlab.models.io import load_model, save_model
from mnistlab.models.registry import register_model
from mnistlab.models.summary import format_summary, summarize

ALL = list_models()


@pytest.mark.parametrize("name", ALL)
def test_forward_and_backward(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    logits = model(x)
    assert logits.shape == (4, 10) and logits.dtype == torch.float32
    logits.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ALL)
def test_summary_totals_match_the_model(name):
    model = create_model(name)
    rows, totals = summarize(model)
    assert totals["trainable"] == count_parameters(model)
    assert sum(r.params for r in rows) == totals["total"]
    assert rows[-1].output_shape == (None, 10)


def test_published_parameter_counts():
    counts = {name: count_parameters(create_model(name)) for name in ALL}
    assert counts["allconv"] == 72_890  # the tutorial's Keras summary
    assert counts["keras-cnn"] == 34_826  # keras.io simple MNIST convnet
    assert counts["linear"] == 7_850 and counts["mlp"] == 269_322 and counts["lenet5"] == 60_170
    text = format_summary(create_model("allconv"), "allconv")
    assert "Trainable params: 72,890" in text and "Non-trainable params: 448" in text


def test_fastnet_widths_and_space_to_depth():
    from mnistlab.models.zoo import SpaceToDepth

    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).view(2, 1, 5, 6)
    y = SpaceToDepth(2)(x)  # odd sizes are cropped to whole 2x2 patches
    assert y.shape == (2, 4, 2, 3) and y[0, :, 0, 0].tolist() == [0.0, 1.0, 6.0, 7.0]
    wide = create_model("fastnet", widths=(32, 64, 128))
    assert wide(torch.zeros(2, 28, 28)).shape == (2, 10)
    assert count_parameters(wide) > count_parameters(create_model("fastnet"))
    deep = create_model("fastnet", depth=2)
    assert deep(torch.zeros(2, 28, 28)).shape == (2, 10) and len(deep.net) > len(create_model("fastnet").net)
    with pytest.raises(ConfigError, match="fastnet: 4 blocks pool a 28x28 image to nothing"):
        create_model("fastnet", widths=(8, 8, 8, 8))


def test_every_accepted_input_gives_the_same_logits():
    model = create_model("keras-cnn").eval()
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    reference = model(torch.from_numpy(images))
    for variant in (images.reshape(3, 1, 28, 28), images.reshape(3, 784), images.astype(np.float32),
                    torch.from_numpy(images).double()):
        assert torch.allclose(model(as_image_batch(variant)), reference, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 28), (3, 2, 28, 28), (3, 27, 28), (784,)])
def test_wrong_shape_is_a_clear_error(shape):
    with pytest.raises(ConfigError, match=r"not accepted; give a batch of shape \(N, 28, 28\)"):
        create_model("linear")(torch.zeros(shape))


def test_unknown_names_and_options():
    with pytest.raises(ConfigError, match="unknown model 'resnet50'; choose one of linear, mlp"):
        create_model("resnet50")
    with pytest.raises(ConfigError, match="no option widht; its options are width"):
        create_model("resnet", widht=8)
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        create_model("mlp", activation="swish")
    with pytest.raises(ValueError, match="registered twice"):
        register_model("mlp")(lambda num_classes, image_shape: None)


@pytest.mark.parametrize("name, options, message", [
    ("mlp", {"hidden": 5}, r"model 'mlp' option 'hidden' must be a list \(an integer each\), got 5"),
    ("mlp", {"hidden": [64.5]}, r"model 'mlp' option 'hidden\[0\]' must be an integer, got 64.5"),
    ("mlp", {"activation": 1}, "model 'mlp' option 'activation' must be a string, got 1"),
    ("lenet5", {"padding": True}, "model 'lenet5' option 'padding' must be an integer, got True"),
    ("mlp", {"hidden": [-5]}, r"model 'mlp' cannot be built with options \{'hidden': \[-5\]\}: .*negative"),
])
def test_wrong_option_values_are_clear_errors(name, options, message):
    with pytest.raises(ConfigError, match=message):
        create_model(name, **options)


def test_option_values_convert_where_lossless():
    assert create_model("resnet", dropout=0).spec["options"] == {"dropout": 0}  # an int is a fine float
    assert create_model("fastnet", widths=[16, 32]).net[-1].in_features == 32 * 3 * 3


def test_mlp_options_build_what_they_say():
    model = create_model("mlp", hidden=[64, 32, 16], activation="gelu", dropout=0.1)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [64, 32, 16, 10]
    assert any(isinstance(m, torch.nn.GELU) for m in model.modules())
    assert [m.out_features for m in create_model("mlp-128-32").modules() if isinstance(m, torch.nn.Linear)] == [
        128, 32, 10]


def test_normalization_lives_in_the_model_and_is_saved(tmp_path, mnist):
    torch.manual_seed(0)
    model = create_model("mlp")  # standardize: per-pixel statistics
    model.normalize.fit(mnist.train_images)
    mean = mnist.train_images.astype(np.float64).mean(0) / 255
    assert np.allclose(model.normalize.mean.numpy().reshape(28, 28), mean, atol=1e-6)
    assert model.normalize.std.min() > 0  # constant border pixels keep std 1
    fixed = create_model("lenet5", normalize="global", mean=0.13, std=0.31)
    fixed.normalize.fit(mnist.train_images)  # given statistics are not re-fitted
    assert torch.allclose(fixed.normalize.mean, torch.full_like(fixed.normalize.mean, 0.13))
    save_model(model, tmp_path / "m", dataset="mnist")
    loaded, meta = load_model(tmp_path / "m.safetensors")
    images = mnist.test_images[:64]
    assert torch.equal(loaded(images), model.eval()(torch.from_numpy(images)))
    assert meta["dataset"] == "mnist" and meta["model"]["name"] == "mlp"


def test_bad_normalization_options():
    with pytest.raises(ConfigError, match="unknown normalization"):
        create_model("linear", normalize="minmax")
    with pytest.raises(ConfigError, match="mean and std go together"):
        create_model("linear", normalize="global", mean=0.1)


def test_global_normalization_matches_numpy(mnist):
    model = create_model("lenet5")  # global: one mean and std over all pixels
    model.normalize.fit(mnist.train_images[:5000])
    x = mnist.train_images[:5000].astype(np.float64) / 255
    assert np.allclose(model.normalize.mean.numpy(), x.mean(), atol=1e-6)
    assert np.allclose(model.normalize.std.numpy(), x.std(), atol=1e-6)
    from_floats = create_model("lenet5")  # uint8 images are counted by value; other types are summed
    from_floats.normalize.fit(torch.from_numpy(mnist.train_images[:5000]).float())
    assert torch.allclose(from_floats.normalize.mean, model.normalize.mean, atol=1e-6)
    assert torch.allclose(from_floats.normalize.std, model.normalize.std, atol=1e-6)
