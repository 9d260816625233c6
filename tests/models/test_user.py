"""Your own model: builder references, importing the code the user names, and wrapping it like the zoo's."""

import textwrap

import pytest
import torch
from torch import nn

from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.models import create_model
from mnistlab.models.io import load_model, save_model
from mnistlab.models.user import import_builder, is_reference, model_label, reference_of

NET = textwrap.dedent("""
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self, num_classes=10, width=4):
            super().__init__()
            self.conv = nn.Conv2d(1, width, 3, padding=1)
            self.head = nn.LazyLinear(num_classes)

        def forward(self, x):
            return self.head(self.conv(x).relu().flatten(1))

    def build(num_classes, width: int = 4):
        return Tiny(num_classes, width)

    def not_a_module():
        return 42

    def wrong_logits(num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(784, num_classes + 1))
""")


@pytest.fixture
def mynet(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(NET)
    return path


def test_references_and_labels():
    assert is_reference("pkg.nets:build") and is_reference("nets/my.py:Net") and not is_reference("lenet5")
    assert model_label("nets/my.py:build") == "my" and model_label("__main__:MyCNN") == "MyCNN"
    assert model_label("pkg.nets:build") == "nets" and model_label("mlp") == "mlp"
    assert model_label("pkg.nets:LeNet") == "LeNet" and model_label("my.py:Nets.Small") == "Small"

    class Local(nn.Module):
        pass

    assert reference_of(Local()).endswith(":test_references_and_labels.<locals>.Local")
    assert reference_of(nn.Linear) == "torch.nn.modules.linear:Linear"


def test_a_file_builder_is_wrapped_with_normalization_and_checked(mynet):
    reference = f"{mynet}:build"
    model = create_model(reference, builder=import_builder(reference), width=6)
    assert model.spec == {"name": reference, "num_classes": 10, "image_shape": [28, 28], "options": {"width": 6}}
    assert model.normalize.mode == "global"  # your own model takes raw pixels all the same
    assert model(torch.zeros(3, 28, 28, dtype=torch.uint8)).shape == (3, 10)
    assert model.net.head.weight.shape == (10, 6 * 28 * 28)  # the lazy layer took its shape from a dry run
    # the file is imported once per process
    assert import_builder(reference) is import_builder(f"{mynet}:build")


def test_module_references_import_like_python(mynet, monkeypatch):
    monkeypatch.syspath_prepend(str(mynet.parent))
    model = create_model("mynet:Tiny", import_code=True, width=2)
    assert isinstance(model.net, nn.Module) and model.spec["options"] == {"width": 2}


@pytest.mark.parametrize("name, options, message", [
    ("{net}:build", {"depth": 3}, "has no option depth; its options are width, normalize, mean, std"),
    ("{net}:missing", {}, "defines no 'missing' \\(it defines Tiny, build, not_a_module, wrong_logits\\)"),
    ("{net}:not_a_module", {}, "the builder returned a int, not a torch.nn.Module"),
    ("{net}:wrong_logits", {}, r"maps a batch of shape \(2, 1, 28, 28\) to \(2, 11\); it must return logits "
                               r"of shape \(N, 10\)"),
    ("{net}:build", {"width": -1}, "cannot be built with options {'width': -1}"),
    ("{dir}/absent.py:build", {}, "no file .*absent.py"),
    ("no_such_package.nets:build", {}, "no module 'no_such_package' to import"),
    ("{dir}/broken.py:build", {}, r"importing .*broken.py failed \(ZeroDivisionError"),
])
def test_bad_builders_get_one_clear_error(mynet, name, options, message):
    (mynet.parent / "broken.py").write_text("1 / 0\n")
    with pytest.raises(ConfigError, match=message):
        create_model(name.format(net=mynet, dir=mynet.parent), import_code=True, **options)


def test_loading_runs_your_code_only_when_you_name_it(mynet, tmp_path):
    reference = f"{mynet}:build"
    torch.manual_seed(0)
    model = create_model(reference, import_code=True, width=3)
    weights = save_model(model, tmp_path / "ckpt", class_names=[str(c) for c in range(10)])
    with pytest.raises(MnistlabError, match=f"its model is your own .*--model {reference}"):
        load_model(weights)
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    expected = model.eval()(images)
    by_reference, _ = load_model(weights, model=reference)
    by_instance, _ = load_model(weights, model=import_builder(reference)(10, width=3))
    torch.testing.assert_close(by_reference(images), expected, rtol=0, atol=0)
    torch.testing.assert_close(by_instance(images), expected, rtol=0, atol=0)
    with pytest.raises(MnistlabError, match="weights do not fit .*the model you passed does not match it"):
        load_model(weights, model=import_builder(reference)(10, width=5))


def test_an_instance_passed_for_loading_is_copied_for_each_model(mynet, tmp_path):
    reference = f"{mynet}:build"
    saved = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        saved.append(save_model(create_model(reference, import_code=True), tmp_path / f"m{seed}"))
    mine = import_builder(reference)(10)
    first, _ = load_model(saved[0], model=mine)
    second, _ = load_model(saved[1], model=mine)  # an ensemble's members: one instance given, two models
    assert first.net is not second.net and first.net is not mine
    assert not torch.equal(first.net.conv.weight, second.net.conv.weight)
