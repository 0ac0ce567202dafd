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


def test_temperature_is_positive_and_lowers_the_ece(nb, summary, calibrated, test_set):
    temperature = summary["temperature"]
    assert 0 < temperature < 1, "label smoothing makes the raw model under-confident, so T must sharpen (T < 1)"
    raw = softmax(np.log(calibrated) * temperature, axis=1)  # undo the temperature built into the last layer
    assert np.array_equal(raw.argmax(axis=1), calibrated.argmax(axis=1))
    *_, ece_raw = nb["reliability"](raw, test_set[1])
    *_, ece_calibrated = nb["reliability"](calibrated, test_set[1])
    assert ece_calibrated < ece_raw
    assert ece_calibrated <= (0.01 if nb["FAST"] else 0.005), f"test ECE {ece_calibrated:.4f}"


def test_reliability_of_a_perfectly_calibrated_toy(nb):
    """Predictions at 75% confidence that are right 3 times in 4 have an ECE of 0."""
    probs = np.tile([0.75, 0.25], (4, 1))
    *_, ece = nb["reliability"](probs, np.array([0, 0, 0, 1]))
    assert ece == pytest.approx(0)
    *_, ece = nb["reliability"](probs, np.array([1, 1, 1, 1]))
    assert ece == pytest.approx(0.75)


@pytest.mark.parametrize("filename, runner, tolerance", [
    ("mnist_cnn.onnx", "onnx_runner", 1e-4),
    ("mnist_cnn_int8.tflite", "litert_runner", 0.06),  # int8 quantization moves probabilities a little
])
def test_exports_agree_and_carry_the_temperature(nb, filename, runner, tolerance, calibrated, test_set):
    path = ARTIFACTS / filename
    assert path.exists(), f"{path} is missing: the pinned environment must export it"
    probs = nb[runner](path)(test_set[0])
    top = np.arange(len(probs)), calibrated.argmax(axis=1)
    assert np.mean(probs.argmax(axis=1) == top[1]) >= 0.999
    assert np.abs(probs[top] - calibrated[top]).max() <= tolerance
    *_, ece = nb["reliability"](probs, test_set[1])
    assert ece <= 0.01, f"{filename}: ECE {ece:.4f}; an export without the temperature would be near 0.08"
