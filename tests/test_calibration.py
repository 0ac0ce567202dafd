"""Calibration: the temperature fitted in the notebook is built into the saved reader."""

import numpy as np
import pytest
from scipy.special import softmax

from conftest import tagged_sources


@pytest.fixture(scope="module")
def test_set(nb, mnist):
    return nb["prepare"](mnist[2]), mnist[3]


@pytest.fixture(scope="module")
def calibrated(saved_reader, test_set):
    return saved_reader.predict(test_set[0], batch_size=1000, verbose=0)


def test_saved_reader_carries_the_temperature(nb, summary, calibrated, test_set):
    """The saved reader is the calibrated one: undoing the temperature gives back the raw model's ECE."""
    temperature = summary["temperature"]
    assert 0.2 < temperature < 5, f"T = {temperature}: far from 1, something is off"
    raw = softmax(np.log(calibrated) * temperature, axis=1)  # undo the temperature built into the last layer
    assert np.array_equal(raw.argmax(axis=1), calibrated.argmax(axis=1)), "a temperature never changes the answer"
    *_, ece_raw = nb["reliability"](raw, test_set[1])
    *_, ece_calibrated = nb["reliability"](calibrated, test_set[1])
    assert ece_raw == pytest.approx(summary["test ECE, raw"], abs=2e-4)
    assert ece_calibrated == pytest.approx(summary["test ECE, calibrated"], abs=2e-4)
    assert ece_calibrated <= (0.01 if nb["FAST"] else 0.005), f"calibrated test ECE {ece_calibrated:.4f}"


def test_temperature_minimises_the_validation_loss(nb, mnist, saved_reader):
    """T was chosen on validation (its digits and its generated non-digits): any other T gives a higher loss there."""
    from sklearn.model_selection import train_test_split
    x_train, x_val, y_train, y_val = train_test_split(nb["prepare"](mnist[0]), mnist[1], test_size=nb["VAL_SIZE"],
                                                      stratify=mnist[1], random_state=nb["SEED"])
    namespace = {**nb, "x_train": x_train[:nb["TRAIN_LIMIT"]], "y_train": y_train[:nb["TRAIN_LIMIT"]]}
    exec(tagged_sources("non-digit-sets")[0], namespace)  # the notebook's own cell: the same images, from the same seed
    x = np.concatenate([x_val, namespace["x_val_non_digits"]])
    y = np.concatenate([y_val, np.full(len(namespace["x_val_non_digits"]), 10)])
    log_probs = np.log(np.maximum(saved_reader.predict(x, batch_size=1000, verbose=0), 1e-30))  # already divided by T
    loss = lambda t: -np.mean(np.log(softmax(log_probs / t, axis=1)[np.arange(len(y)), y]))  # noqa: E731
    assert loss(1) <= min(loss(0.95), loss(1.05)) + 1e-6, "the saved temperature is not the validation optimum"


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
