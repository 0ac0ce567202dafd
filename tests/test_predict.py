"""predict_digit and the MNIST-style preparation of any image: what users rely on."""

import numpy as np
import pytest


class NoModel:
    """Stands in for the model where the input must be refused before the model is used."""

    def predict_on_batch(self, x):
        raise AssertionError("bad input reached the model")


@pytest.mark.parametrize("image, error, message", [
    ([[0] * 28] * 28, TypeError, "file path or a NumPy array, not list"),
    (None, TypeError, "not NoneType"),
    (np.zeros((0, 0), np.uint8), ValueError, "empty"),
    (np.zeros(784, np.uint8), ValueError, r"shape \(784,\)"),
    (np.zeros((1, 28, 28, 1), np.uint8), ValueError, r"shape \(1, 28, 28, 1\)"),
    (np.zeros((28, 28, 2), np.uint8), ValueError, r"shape \(28, 28, 2\)"),
    (np.zeros((28, 28), np.int64), ValueError, "dtype int64 is not supported"),
    (np.zeros((28, 28), bool), ValueError, "dtype bool is not supported"),
    (np.full((28, 28), 255.0), ValueError, r"must lie in \[0, 1\].*divide 0-255 data by 255"),
    (np.full((28, 28), -0.5), ValueError, r"must lie in \[0, 1\]"),
    (np.full((28, 28), np.nan, np.float32), ValueError, r"must lie in \[0, 1\]"),
    (np.full((40, 30), 255, np.uint8), ValueError, "no digit found: the image is blank"),
    (np.zeros((40, 30, 3), np.uint8), ValueError, "no digit found"),
    (np.zeros((28, 28), np.uint8), ValueError, "no digit found"),
    (np.full((28, 28, 1), 1.0), ValueError, "no digit found"),
])
def test_bad_input_gets_a_clear_error(nb, image, error, message):
    with pytest.raises(error, match=message):
        nb["predict_digit"](NoModel(), image)


def test_missing_file_is_reported(nb, tmp_path):
    with pytest.raises(FileNotFoundError):
        nb["predict_digit"](NoModel(), tmp_path / "nothing.png")


def test_mnist_format_of_a_drawing(nb, digit_seven):
    result = nb["to_mnist_format"](digit_seven)
    assert result.shape == (28, 28) and result.dtype == np.float32
    assert 0 <= result.min() and result.max() <= 1 and result.max() > 0.9
    rows, cols = np.nonzero(result > 0.05)
    assert rows.max() - rows.min() < 21 and cols.max() - cols.min() < 21, "digit must fit a 20x20 box"
    ys, xs = np.indices(result.shape)
    centre = np.array([(ys * result).sum(), (xs * result).sum()]) / result.sum()
    assert np.all(np.abs(centre - 13.5) <= 1), f"centre of mass {centre} is not at the centre"
    assert result[0].max() == 0 and result[:, 0].max() == 0, "the border stays background"


def test_inversion_makes_dark_and_light_ink_alike(nb, digit_seven):
    grey = nb["as_grey"](digit_seven)
    dark_on_light = nb["to_mnist_format"](grey)
    light_on_dark = nb["to_mnist_format"](1 - grey)
    assert np.abs(dark_on_light - light_on_dark).max() < 0.05


def test_steps_are_returned_in_order(nb, digit_seven):
    steps = nb["to_mnist_format"](digit_seven, return_steps=True)
    assert list(steps) == ["input", "inverted", "cropped", "scaled to fit 20x20", "centred 28x28"]
    assert max(steps["scaled to fit 20x20"].shape) == 20


def test_predict_digit_on_test_digits(nb, mnist, saved_model):
    _, _, x_test, y_test = mnist
    for image, label in zip(x_test[:20], y_test[:20]):
        digit, confidence = nb["predict_digit"](saved_model, image)
        assert isinstance(digit, int) and isinstance(confidence, float) and 0 < confidence <= 1
        float_digit, _ = nb["predict_digit"](saved_model, image.astype(np.float32) / 255)
        rgb_digit, _ = nb["predict_digit"](saved_model, np.repeat(image[..., None], 3, axis=-1))
        assert digit == float_digit == rgb_digit
    correct = sum(nb["predict_digit"](saved_model, x)[0] == y for x, y in zip(x_test[:200], y_test[:200]))
    assert correct >= 195


def test_predict_digit_from_a_file(nb, saved_model, digit_seven, tmp_path):
    from PIL import Image
    path = tmp_path / "seven.png"
    Image.fromarray(digit_seven).save(path)
    assert nb["predict_digit"](saved_model, path) == nb["predict_digit"](saved_model, digit_seven)
    assert nb["predict_digit"](saved_model, str(path))[0] == 7
