"""predict_digit and the MNIST-style preparation of any image: what users rely on."""

import numpy as np
import pytest
from PIL import Image, ImageDraw


class NoModel:
    """Stands in for the model where the input must be refused before the model is used."""

    def predict_on_batch(self, x):
        raise AssertionError("bad input reached the model")


def single_dot():
    image = np.zeros((28, 28), np.uint8)
    image[14, 14] = 255
    return image


@pytest.mark.parametrize("image, error, message", [
    ([[0] * 28] * 28, TypeError, "PIL image, tensor or NumPy array, not list"),
    (None, TypeError, "not NoneType"),
    (np.zeros((0, 0), np.uint8), ValueError, r"shape \(0, 0\)"),
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
    (np.zeros((60, 60, 4), np.uint8), ValueError, "no digit found"),  # fully transparent: white paper
    (single_dot(), ValueError, "no digit found: .* only a dot"),
    (255 - single_dot(), ValueError, "no digit found: .* only a dot"),
])
def test_bad_input_gets_a_clear_error(nb, image, error, message):
    with pytest.raises(error, match=message):
        nb["predict_digit"](NoModel(), image)


def test_missing_file_is_reported(nb, tmp_path):
    with pytest.raises(FileNotFoundError):
        nb["predict_digit"](NoModel(), tmp_path / "nothing.png")


def transparent_seven():
    """Dark strokes of a 7 on a fully transparent RGBA image, off-centre: what a web canvas exports."""
    image = Image.new("RGBA", (200, 160), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.line([(110, 30), (180, 28), (140, 140)], fill=(20, 20, 20, 255), width=10, joint="curve")
    return image


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


def test_mnist_form_is_left_alone(nb, mnist):
    """A 28x28 light-on-dark, centred digit is already in MNIST's form: it reaches the model unchanged."""
    for image in mnist[2][:300]:
        assert np.array_equal(nb["to_mnist_format"](image), image.astype(np.float32) / 255)


def test_an_off_centre_28x28_digit_is_centred(nb, mnist, saved_model):
    """A light-on-dark 28x28 digit moved off-centre goes through the recipe, which centres it again."""
    from scipy import ndimage
    _, _, x_test, y_test = mnist
    moved = [np.roll(image, (4, -4), axis=(0, 1)) for image in x_test[:100]]  # the ink stays inside
    for image in moved[:10]:
        result = nb["to_mnist_format"](image)
        assert np.abs(np.subtract(ndimage.center_of_mass(result), 14)).max() <= 0.6
    right = sum(nb["predict_digit"](saved_model, image)[0] == label for image, label in zip(moved, y_test[:100]))
    assert right >= 97, f"only {right} of 100 off-centre digits read right"


def test_transparency_is_white_paper(nb):
    seven = transparent_seven()
    on_white = Image.alpha_composite(Image.new("RGBA", seven.size, "white"), seven).convert("RGB")
    assert np.abs(nb["as_grey"](seven) - nb["as_grey"](np.asarray(on_white))).max() < 1 / 255
    assert np.abs(nb["as_grey"](np.asarray(seven)) - nb["as_grey"](seven)).max() < 1e-6  # RGBA array, same answer


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


def test_each_input_kind_is_read(nb, mnist, saved_model, tmp_path):
    """uint8 array, dark-on-light 28x28, PIL image, tensor, transparent PNG file: each gives the right digit."""
    _, _, x_test, y_test = mnist
    seven_path = tmp_path / "seven.png"
    transparent_seven().save(seven_path)
    cases = [(x_test[0], y_test[0]), (255 - x_test[0], y_test[0]), (Image.fromarray(x_test[1]), y_test[1]),
             (nb["tf"].constant(x_test[2]), y_test[2]), (seven_path, 7), (str(seven_path), 7), (transparent_seven(), 7)]
    for image, label in cases:
        assert nb["predict_digit"](saved_model, image)[0] == label, f"{type(image).__name__} input misread"


def test_dark_on_light_mnist_digits_are_read(nb, mnist, saved_model):
    """MNIST digits inverted to dark ink on white paper, at 28x28: the recipe is applied, not skipped."""
    _, _, x_test, y_test = mnist
    right = sum(nb["predict_digit"](saved_model, 255 - x)[0] == y for x, y in zip(x_test[:300], y_test[:300]))
    assert right >= 291, f"only {right} of 300 inverted test digits read right"


def test_predict_digit_from_a_file(nb, saved_model, digit_seven, tmp_path):
    path = tmp_path / "seven.png"
    Image.fromarray(digit_seven).save(path)
    assert nb["predict_digit"](saved_model, path) == nb["predict_digit"](saved_model, digit_seven)
    assert nb["predict_digit"](saved_model, str(path))[0] == 7


def test_min_confidence_says_unsure(nb, saved_model):
    """Non-digits still get a digit by default; with min_confidence, a low probability gives None."""
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    digit, probability = nb["predict_digit"](saved_model, noise)
    assert isinstance(digit, int) and 0 < probability <= 1
    assert nb["predict_digit"](saved_model, noise, min_confidence=probability) == (digit, probability)
    assert nb["predict_digit"](saved_model, noise, min_confidence=np.nextafter(probability, 2)) == (None, probability)



def test_a_ten_digit_model_never_says_not_a_digit(nb, saved_model):
    """Part I's model has ten outputs: whatever it is shown, it names a digit."""
    rng = np.random.default_rng(0)
    for make in nb["TEACH"].values():
        answer, probability = nb["predict_digit"](saved_model, make(rng))
        assert isinstance(answer, int) and 0 <= answer <= 9 and 0 < probability <= 1


@pytest.mark.parametrize("kind", ["noise", "scribbles", "letters, DejaVu Sans", "letters, 14 other fonts", "textures", "shapes",
                                  "photo crops"])
def test_the_reader_says_not_a_digit(nb, saved_reader, kind):
    """Called as for a digit, with no extra argument, the reader answers NOT_A_DIGIT for most non-digits, of every kind,
    the kinds it never saw included; with the notebook's threshold, nearly all of them are refused."""
    rng = np.random.default_rng(12345)  # not a seed the notebook uses
    make = {**nb["TEACH"], **nb["HELD_OUT"]}[kind]
    answers = [nb["predict_digit"](saved_reader, make(rng))[0] for _ in range(60)]
    assert all(a == nb["NOT_A_DIGIT"] or isinstance(a, int) for a in answers)
    share = np.mean([a == nb["NOT_A_DIGIT"] for a in answers])
    assert share >= (0.9 if kind in nb["TEACH"] else 0.6), f"{kind}: only {share:.0%} called not a digit"


def test_the_reader_refuses_with_its_threshold(nb, saved_reader, summary):
    rng = np.random.default_rng(54321)
    images = [make(rng) for make in nb["HELD_OUT"].values() for _ in range(40)]
    answers = [nb["predict_digit"](saved_reader, image, summary["confidence threshold"])[0] for image in images]
    refused = np.mean([a is None or a == nb["NOT_A_DIGIT"] for a in answers])
    assert refused >= 0.9, f"only {refused:.0%} of non-digits of kinds never taught were refused"


def test_the_reader_still_reads_digits(nb, mnist, saved_reader, summary):
    """Real digits are not called "not a digit": MNIST test digits (the batch) and digits printed in other fonts."""
    _, _, x_test, y_test = mnist
    probs = saved_reader.predict(nb["prepare"](x_test[:2000]), batch_size=1000, verbose=0)
    assert np.mean(probs.argmax(axis=1) == 10) <= 0.002
    assert np.mean(probs.argmax(axis=1) == y_test[:2000]) >= 0.99
    rng = np.random.default_rng(2024)
    labels = rng.integers(0, 10, 100)
    answers = [nb["predict_digit"](saved_reader, nb["printed"](str(d), nb["OTHER_FONTS"], rng))[0] for d in labels]
    assert np.mean([a == d for a, d in zip(answers, labels)]) >= 0.95
    digit, probability = nb["predict_digit"](saved_reader, transparent_seven(), summary["confidence threshold"])
    assert digit == 7 and probability >= summary["confidence threshold"]


def test_errors_stay_errors_for_the_reader(nb):
    """Blank images and wrong types are errors, before any model is asked: never "not a digit"."""
    for image, error in [(np.zeros((28, 28), np.uint8), ValueError), (single_dot(), ValueError), ("x" * 3, FileNotFoundError),
                         ([1, 2, 3], TypeError)]:
        with pytest.raises(error):
            nb["predict_digit"](NoModel(), image)
