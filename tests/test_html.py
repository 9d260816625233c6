"""What a notebook shows of runs, predictors and datasets (`_repr_html_`): their figures and a summary,
self-contained."""

import mnistlab


def test_runs_predictors_and_datasets_show_themselves(mnist_runs, fashion):
    run = mnist_runs[0]
    shown = run._repr_html_()
    assert f"run {run.name}" in shown and "test accuracy" in shown and "data:image/png;base64," in shown
    temperature = run.metrics()["temperature"]
    assert "test calibration error (ECE)" in shown and f"logits divided by {temperature:.3f}" in shown
    assert "keras-cnn" in mnistlab.load(run.path)._repr_html_()
    data = fashion._repr_html_()
    assert "T-shirt/top" in data and "60,000" in data and "data:image/png;base64," in data
