"""Calibration: the temperature fitted in the notebook is in the saved model and in every export."""

import json

import numpy as np
import pytest
from scipy.special import softmax

from conftest import ROOT

ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def summary():
    path = ARTIFACTS / "summary.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run the notebook first (`make test` runs it through nbval)")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def test_set(nb, mnist):
    return nb["prepare"](mnist[2]), mnist[3]


@pytest.fixture(scope="module")
def calibrated(saved_model, test_set):
    return saved_model.predict(test_set[0], batch_size=1000, verbose=0)


def test_saved_model_carries_the_temperature(nb, summary, calibrated, test_set):
    """The saved model is the calibrated one: undoing the temperature gives back the raw model's ECE."""
    temperature = summary["temperature"]
    assert 0.2 < temperature < 5, f"T = {temperature}: far from 1, something is off"
    raw = softmax(np.log(calibrated) * temperature, axis=1)  # undo the temperature built into the last layer
    assert np.array_equal(raw.argmax(axis=1), calibrated.argmax(axis=1)), "a temperature never changes the top digit"
    *_, ece_raw = nb["reliability"](raw, test_set[1])
    *_, ece_calibrated = nb["reliability"](calibrated, test_set[1])
    assert ece_raw == pytest.approx(summary["test ECE, raw"], abs=2e-4)
    assert ece_calibrated == pytest.approx(summary["test ECE, calibrated"], abs=2e-4)
    assert ece_calibrated <= (0.01 if nb["FAST"] else 0.005), f"calibrated test ECE {ece_calibrated:.4f}"


def test_temperature_minimises_the_validation_loss(nb, mnist, saved_model):
    """T was chosen on validation: any other temperature gives a higher validation cross-entropy."""
    from sklearn.model_selection import train_test_split
    x_train, y_train = nb["prepare"](mnist[0]), mnist[1]
    _, x_val, _, y_val = train_test_split(x_train, y_train, test_size=nb["VAL_SIZE"], stratify=y_train, random_state=nb["SEED"])
    log_probs = np.log(np.maximum(saved_model.predict(x_val, batch_size=1000, verbose=0), 1e-30))  # already divided by T
    loss = lambda t: -np.mean(np.log(softmax(log_probs / t, axis=1)[np.arange(len(y_val)), y_val]))  # noqa: E731
    assert loss(1) <= min(loss(0.9), loss(1.1)) + 1e-6, "the saved temperature is not the validation optimum"


def test_reliability_of_a_perfectly_calibrated_toy(nb):
    """Predictions at 75% confidence that are right 3 times in 4 have an ECE of 0."""
    probs = np.tile([0.75, 0.25], (4, 1))
    confidence, accuracy, counts, ece = nb["reliability"](probs, np.array([0, 0, 0, 1]))
    assert ece == pytest.approx(0) and list(counts) == [4] and accuracy[0] == 0.75 and confidence[0] == 0.75
    *_, ece = nb["reliability"](probs, np.array([1, 1, 1, 1]))
    assert ece == pytest.approx(0.75)


def test_reliability_bins_and_weights(nb):
    """Two bins, weighted by their counts: 3 predictions at 0.95 all right, 1 at 0.55 wrong."""
    probs = np.array([[0.95, 0.05]] * 3 + [[0.55, 0.45]])
    confidence, accuracy, counts, ece = nb["reliability"](probs, np.array([0, 0, 0, 1]))
    assert list(counts) == [1, 3] and list(accuracy) == [0, 1]
    assert ece == pytest.approx((1 * 0.55 + 3 * 0.05) / 4)


def test_litert_export_agrees_and_carries_the_temperature(nb, calibrated, test_set):
    path = ARTIFACTS / "mnist_cnn_int8.tflite"
    assert path.exists(), f"{path} is missing: the pinned environment must export it"
    probs = nb["litert_runner"](path)(test_set[0])
    top = np.arange(len(probs)), calibrated.argmax(axis=1)
    assert np.mean(probs.argmax(axis=1) == top[1]) >= 0.999
    assert np.abs(probs[top] - calibrated[top]).max() <= 0.1, "int8 quantization moves probabilities only a little"
    *_, ece = nb["reliability"](probs, test_set[1])
    assert ece <= 0.01, f"LiteRT export: ECE {ece:.4f}"
