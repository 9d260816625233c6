import numpy as np
import pytest

from mnistlab.metrics import classification_metrics, worst_mistakes


def test_metrics_by_hand():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    m = classification_metrics(proba, labels, ["a", "b"])
    assert m["accuracy"] == 0.75 and m["confusion_matrix"] == [[1, 0], [1, 2]]
    a, b = m["per_class"]
    assert (a["precision"], a["recall"]) == (0.5, 1.0) and (b["precision"], b["recall"]) == (1.0, 2 / 3)
    assert b["f1"] == pytest.approx(0.8) and m["loss"] == pytest.approx(-np.log([0.9, 0.8, 0.4, 0.7]).mean())
    assert worst_mistakes(proba, labels).tolist() == [2]


def test_metrics_report_the_calibration_error():
    # one image per bin: |1 - 0.9|, |1 - 0.8|, |0 - 0.6| (wrong), |1 - 0.7|, averaged
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert classification_metrics(proba, np.array([0, 1, 1, 1]), ["a", "b"])["ece"] == pytest.approx(0.3)
