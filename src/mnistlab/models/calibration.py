"""Confidences that mean what they say: the calibration error of probabilities, and temperature scaling.

A network trained with label smoothing is underconfident (it gives a clean digit about 90%); one trained
long without it is overconfident. Dividing its logits by one temperature T > 0, chosen to minimize the
cross-entropy on held-out images (Guo et al., 2017, "On Calibration of Modern Neural Networks"), removes
most of either and changes no answer: argmax(logits / T) = argmax(logits). A `Classifier` divides its logits
by its `temperature` (1 while training; the fitted value is saved in the checkpoint's description).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.errors import MnistlabError

# a fitted temperature is kept inside these: beyond them the validation split is too small or too easy to say
TEMPERATURE_RANGE = (0.05, 20.0)


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """How far confidence is from accuracy (Guo et al., 2017): the images are put in `bins` equal-width bins
    of their top probability, and the gaps |accuracy - mean confidence| of the bins are averaged, weighted
    by the images in each. 0 is perfectly calibrated; an answer given with 90% should be right 9 times in 10."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gaps = np.abs(np.bincount(which, correct, bins) - np.bincount(which, confidence, bins))
    return float(gaps.sum() / max(count.sum(), 1))


def logits_ece(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """`expected_calibration_error` of softmax(logits / temperature), logits (N, classes), labels (N,)."""
    proba = torch.softmax(logits.float() / temperature, 1)
    return expected_calibration_error(proba.cpu().numpy(), labels.cpu().numpy())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T that minimizes the mean cross-entropy of softmax(logits / T) over held-out logits
    (N, classes) and labels (N,), by L-BFGS on log T (the loss is convex in 1/T: one minimum), kept inside
    TEMPERATURE_RANGE."""
    if len(logits) == 0:
        raise MnistlabError("a temperature is fitted on held-out images, and there are none")
    # a copy outside inference mode (the logits come from it), in float64 for a steady line search
    logits, labels = logits.detach().to("cpu", torch.float64).clone(), labels.detach().to("cpu").long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    temperature = math.exp(log_t.item())
    low, high = TEMPERATURE_RANGE
    return min(max(temperature, low), high) if math.isfinite(temperature) else 1.0
