import json
import sys

import pytest

from mnistlab.cli import main
from mnistlab.errors import ConfigError
from mnistlab.recipes import list_recipes, load_recipe

TUTORIAL = ["logreg", "mlp-256", "vanilla-cnn", "vanilla-cnn-dropout", "allconv", "allconv-augment",
            "allconv-ensemble", "keras-cnn", "keras-cnn-plateau", "lenet5-fashion", "lenet5-fashion-published",
            "tf-dense", "tf-cnn", "keras-logreg"]


def test_every_tutorial_recipe_is_shipped_with_its_figures():
    assert set(TUTORIAL) <= set(list_recipes())
    assert load_recipe("logreg").published == {"val_accuracy": 0.936, "test_accuracy": 0.924}
    assert load_recipe("allconv-ensemble").ensemble == 4
    # the tutorial as written: its ReduceLROnPlateau(monitor='loss', patience=10000) never fires, its early
    # stopping keeps the last weights, which are the ones evaluated; mnistlab's variant is a recipe of its own
    keras = load_recipe("keras-cnn").settings
    assert keras["validation"] == "test" and keras["early_stopping"] == 15 and keras["schedule"] == "constant"
    assert keras["restore_best"] is False and keras["checkpoint_monitor"] == "last"
    assert load_recipe("keras-cnn-plateau").settings["schedule"] == "plateau"
    published = load_recipe("lenet5-fashion-published")
    assert published.train_accuracy_epochs == (11, 20) and published.settings["epochs"] == 20


def test_recipes_command_lists_published_figures(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "mlp-256" in out and "test_accuracy 0.9737" in out and "val_accuracy 0.901" in out


def test_records_are_recipes_with_targets(capsys):
    fast = load_recipe("fast")
    assert fast.is_record and fast.target["test_accuracy"] == 0.99 and fast.target["cpu_seconds"] == 1.0
    assert not load_recipe("logreg").is_record
    from mnistlab.reproduce import default_recipes

    names = {r.name for r in default_recipes()}
    assert set(TUTORIAL) <= names and "fast" not in names and "fast-99.5" not in names
    assert main(["recipes"]) == 0
    assert "record target: test_accuracy 0.99, every_seed 0.989, cpu_seconds 1" in capsys.readouterr().out


def test_own_recipe_file_and_bad_recipes(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text('[recipe]\ntitle = "mine"\n[settings]\nmodel = "linear"\nepochs = 2\n')
    assert load_recipe(good).settings == {"model": "linear", "epochs": 2}
    bad = tmp_path / "bad.toml"
    bad.write_text('[recipe]\ntitle = "bad"\n[settings]\nmodel = "linear"\nepochz = 2\n')
    with pytest.raises(ConfigError, match="unknown setting 'epochz'"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    bad.write_text('[recipe]\ntitle = "bad"\ntrain_accuracy_epochs = [20, 11]\n[settings]\nmodel = "linear"\n')
    with pytest.raises(ConfigError, match="train_accuracy_epochs is \\[FIRST, LAST\\]"):
        load_recipe(bad)


def test_a_row_reports_the_kept_epochs_validation_and_the_tutorials_training_accuracy():
    from mnistlab.reproduce import _figures

    class Run:  # what _figures reads of a run folder
        def metrics(self):
            return {"test_accuracy": 0.9, "test_loss": 0.3, "best_epoch": 3}

        def history(self):
            return [{"epoch": e, "accuracy": a, "val_accuracy": v}
                    for e, a, v in [(1, 0.5, 0.6), (2, 0.7, 0.8), (3, 0.8, 0.7), (4, 0.9, 0.75)]]

    assert _figures(Run()) == {"test_accuracy": 0.9, "test_loss": 0.3, "train_accuracy": 0.9, "val_accuracy": 0.7}
    assert _figures(Run(), train_epochs=(2, 3))["train_accuracy"] == pytest.approx(0.75)


def test_train_with_a_recipe_and_overriding_flags(tmp_path, capsys):
    assert main(["train", "--recipe", "keras-logreg", "--epochs", "1", "--subset", "2000", "--runs-dir",
                 str(tmp_path), "-q", "--no-tensorboard"]) == 0
    run = tmp_path / "mnist-linear-1"
    settings = (run / "settings.toml").read_text()
    assert "epochs = 1" in settings and "batch_size = 32" in settings


def test_reproduce_quick_runs_recipes_end_to_end(tmp_path, capsys):
    ensemble = tmp_path / "linear-ensemble.toml"  # allconv-ensemble's path, with members that train in a second
    ensemble.write_text('[recipe]\ntitle = "3 linear models"\nensemble = 3\npublished = { test_accuracy = 0.93 }\n'
                        '[settings]\nmodel = "linear"\nlr = 0.1\n')
    assert main(["reproduce", "logreg", "lenet5-fashion", str(ensemble), "--quick", "--runs-dir",
                 str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "reproduce.json").read_text())
    assert [r["recipe"] for r in rows] == ["logreg", "lenet5-fashion", "linear-ensemble"]
    assert (tmp_path / "linear-ensemble-s0-ensemble" / "ensemble.json").is_file()
    assert all(0 < r["mnistlab"]["test_accuracy"]["mean"] <= 1 for r in rows)
    table = (tmp_path / "reproduce.md").read_text()
    assert "| logreg (quick) | val 93.60%, test 92.40% |" in table


def test_reproduce_keeps_rows_of_recipes_not_rerun(tmp_path):
    main(["reproduce", "logreg", "--quick", "--device", "cpu", "--runs-dir", str(tmp_path)])
    assert 'device = "cpu"' in (tmp_path / "logreg-s0-1" / "settings.toml").read_text()
    main(["reproduce", "tf-dense", "logreg", "--quick", "--runs-dir", str(tmp_path)])
    rows = json.loads((tmp_path / "reproduce.json").read_text())
    assert [r["recipe"] for r in rows] == ["logreg", "tf-dense"]
    assert "| tf-dense (quick) |" in (tmp_path / "reproduce.md").read_text()


def test_reproduce_header_names_the_machine_of_each_row():
    from mnistlab.reproduce import machines_line

    rows = [{"recipe": "logreg", "machine": "AMD EPYC"}, {"recipe": "tf-cnn", "machine": "Intel Xeon"},
            {"recipe": "mlp-256", "machine": "AMD EPYC"}]
    assert machines_line(rows) == "AMD EPYC: logreg, mlp-256; Intel Xeon: tf-cnn"
    assert machines_line(rows[:1]) == "AMD EPYC"


def test_recipes_show_prints_the_settings_that_train_uses(capsys):
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the tomli backport that mnistlab itself uses there
        import tomli as tomllib

    for name in ("fast", "allconv-ensemble"):
        assert main(["recipes", "show", name]) == 0
        out = capsys.readouterr().out
        recipe = load_recipe(name)
        settings_text = "[settings]" + out.split("[settings]", 1)[1].split("\nrun it:", 1)[0]
        tables = tomllib.loads(settings_text)  # as a recipe file writes them
        assert tables["settings"] == recipe.settings and tables.get("cuda", {}) == recipe.cuda
        assert recipe.figures() in out and str(recipe.path) in out
    assert "run it: mnistlab reproduce allconv-ensemble  (trains the 4 members" in out


def test_training_one_member_of_an_ensemble_recipe_says_so(tmp_path, capsys):
    assert main(["train", "--recipe", "allconv-ensemble", "--model", "linear", "--epochs", "1", "--subset", "500",
                 "--runs-dir", str(tmp_path), "-q", "--no-tensorboard"]) == 0
    assert "allconv-ensemble averages 4 models and this trains one of them" in capsys.readouterr().err


def test_a_recipe_cuda_table_applies_on_a_gpu_only(tmp_path):
    recipe = load_recipe("fast")
    assert recipe.cuda == {"cuda_graph": True}
    assert recipe.settings_for("cpu") == recipe.settings
    assert recipe.settings_for("cuda") == {**recipe.settings, "cuda_graph": True}
    assert not recipe.config(overrides={"device": "cpu"}).cuda_graph
    own = tmp_path / "mine.toml"
    own.write_text('[recipe]\ntitle = "t"\n[settings]\nepochs = 2\n[cuda]\nbatch_size = -1\n')
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        load_recipe(own)  # the cuda table is checked as well, on any machine


def test_a_recipe_config_reads_its_settings_once_for_the_device_chosen(tmp_path):
    recipe = load_recipe("fast")
    assert recipe.cuda  # a [cuda] table that only a GPU run takes
    on_cpu = recipe.config(overrides={"device": "cpu", "epochs": 2})
    assert on_cpu.device == "cpu" and on_cpu.epochs == 2 and on_cpu.cuda_graph is False
    (tmp_path / "gpu.toml").write_text('device = "cuda"\n')
    on_gpu = recipe.config(tmp_path / "gpu.toml")  # a device chosen by the config file counts too
    assert on_gpu.cuda_graph == recipe.cuda.get("cuda_graph", False) and on_gpu.device == "cuda"
