"""predict_digit and the MNIST-style preparation of any image: what users rely on."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import READER_PATH, StandIn


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
    """A light-on-dark 28x28 digit moved off-centre goes through the recipe, which centres it again; of 500 such
    digits the trained model reads at least 96% right (the committed run: 98.4%)."""
    from scipy import ndimage
    _, _, x_test, y_test = mnist
    moved = [np.roll(image, (4, -4), axis=(0, 1)) for image in x_test[:500]]  # the ink stays inside
    for image in moved[:10]:
        result = nb["to_mnist_format"](image)
        assert np.abs(np.subtract(ndimage.center_of_mass(result), 14)).max() <= 0.6
    answers = [answer for answer, _ in nb["predict_digits"](saved_model, moved)]
    right = np.mean(np.array(answers) == y_test[:500])
    assert right >= 0.96, f"only {right:.1%} of 500 off-centre digits read right"


def test_transparency_is_white_paper(nb):
    seven = transparent_seven()
    on_white = Image.alpha_composite(Image.new("RGBA", seven.size, "white"), seven).convert("RGB")
    assert np.abs(nb["as_grey"](seven) - nb["as_grey"](np.asarray(on_white))).max() < 1 / 255
    assert np.abs(nb["as_grey"](np.asarray(seven)) - nb["as_grey"](seven)).max() < 1e-6  # RGBA array, same answer


def test_predict_digit_on_test_digits(nb, mnist, saved_model):
    """uint8, float and RGB copies of a digit reach the model as the same image, so they get the same answer
    whatever the training; and the trained model reads at least 97.5% of 200 test digits (the committed run: all)."""
    _, _, x_test, y_test = mnist
    for image in x_test[:20]:
        digit, confidence = nb["predict_digit"](saved_model, image)
        assert isinstance(digit, int) and isinstance(confidence, float) and 0 < confidence <= 1
        float_digit, _ = nb["predict_digit"](saved_model, image.astype(np.float32) / 255)
        rgb_digit, _ = nb["predict_digit"](saved_model, np.repeat(image[..., None], 3, axis=-1))
        assert digit == float_digit == rgb_digit
    answers = [answer for answer, _ in nb["predict_digits"](saved_model, x_test[:200])]
    assert np.mean(np.array(answers) == y_test[:200]) >= 0.975


def test_each_input_kind_reaches_the_model_alike(nb, mnist, tmp_path):
    """A PIL image, a tensor and an array of one digit, and a transparent drawing as a PNG file (path or string),
    a PIL image or an RGBA array: each reaches the model as the same prepared 28x28 image. A stand-in model
    records what it gets, so this holds whatever the training."""
    _, _, x_test, _ = mnist
    seven_path = tmp_path / "seven.png"
    transparent_seven().save(seven_path)
    groups = [[x_test[1], Image.fromarray(x_test[1]), nb["tf"].constant(x_test[1])],
              [seven_path, str(seven_path), transparent_seven(), np.asarray(transparent_seven())]]
    for group in groups:
        model = StandIn(np.eye(10)[3])
        answers = [nb["predict_digit"](model, image) for image in group]
        assert answers == [(3, 1.0)] * len(group)
        assert all(x.shape == (1, 28, 28, 1) and x.dtype == np.float32 for x in model.seen)
        assert all(np.allclose(x, model.seen[0], atol=1e-6) for x in model.seen), "an input kind was prepared differently"


def test_predict_digits_is_predict_digit_in_one_batch(nb, mnist):
    _, _, x_test, _ = mnist
    model = StandIn(np.eye(10)[5])
    assert nb["predict_digits"](model, x_test[:7]) == [nb["predict_digit"](model, x) for x in x_test[:7]]
    assert [x.shape[0] for x in model.seen] == [7] + [1] * 7, "predict_digits asks the model once"


def test_dark_on_light_mnist_digits_are_read(nb, mnist, saved_model):
    """MNIST digits inverted to dark ink on white paper, at 28x28: the recipe is applied, not skipped. Of 300, at
    least 97% are read right (the committed run: all 300)."""
    _, _, x_test, y_test = mnist
    answers = [answer for answer, _ in nb["predict_digits"](saved_model, 255 - x_test[:300])]
    right = np.mean(np.array(answers) == y_test[:300])
    assert right >= 0.97, f"only {right:.1%} of 300 inverted test digits read right"


def test_predict_digit_from_a_file(nb, saved_model, digit_seven, tmp_path):
    """The same drawing from a PNG file, by path or by string, gets exactly the answer it gets as an array."""
    path = tmp_path / "seven.png"
    Image.fromarray(digit_seven).save(path)
    expected = nb["predict_digit"](saved_model, digit_seven)
    assert nb["predict_digit"](saved_model, path) == expected == nb["predict_digit"](saved_model, str(path))


def test_min_confidence_says_unsure(nb, saved_model):
    """Non-digits still get a digit by default; with min_confidence, a low probability gives None."""
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    digit, probability = nb["predict_digit"](saved_model, noise)
    assert isinstance(digit, int) and 0 < probability <= 1
    assert nb["predict_digit"](saved_model, noise, min_confidence=probability) == (digit, probability)
    assert nb["predict_digit"](saved_model, noise, min_confidence=np.nextafter(probability, 2)) == (None, probability)


@pytest.mark.parametrize("best, threshold, expected", [(4, 0.5, 4), (4, 0.9, None), (10, 0.9, "not a digit")])
def test_the_default_threshold_is_the_models_own(nb, best, threshold, expected):
    """Called without min_confidence, predict_digit uses the model's threshold (a stand-in model's here: the
    rule, not the training, is tested); an explicit min_confidence overrides it; without one, never unsure."""
    image = np.zeros((28, 28), np.uint8)
    image[8:20, 12:16] = 255
    probs = np.eye(11)[best] * 0.56 + 0.04           # 0.6 for the best answer
    answer, probability = nb["predict_digit"](StandIn(probs, threshold=threshold), image)
    assert answer == expected and probability == pytest.approx(0.6)
    overridden = nb["predict_digit"](StandIn(probs, threshold=threshold), image, min_confidence=0)[0]
    assert overridden == (expected if best == 10 else best)
    assert nb["predict_digit"](StandIn(probs), image)[0] == (expected if best == 10 else best)


def test_load_reader_keeps_the_threshold_beside_the_model(nb, saved_reader, tmp_path):
    """The saved reader comes back with its threshold; a missing or tampered threshold file is a clear error,
    and the file that failed is left as it was."""
    settings = json.loads(READER_PATH.with_suffix(".json").read_text())
    assert saved_reader.threshold == settings["threshold"] and 0.5 < saved_reader.threshold < 1
    copy = tmp_path / "digit_reader.keras"
    copy.write_bytes(READER_PATH.read_bytes())
    with pytest.raises(FileNotFoundError, match="digit_reader.json is missing: it holds the threshold"):
        nb["load_reader"](copy)
    for tampered in ['{"threshold": "0.97"}', '{"threshold": 7.0}', "{}", '{"threshold": NaN}']:
        copy.with_suffix(".json").write_text(tampered)
        with pytest.raises(ValueError, match="holds no threshold between 0 and 1"):
            nb["load_reader"](copy)
        assert copy.with_suffix(".json").read_text() == tampered
    copy.with_suffix(".json").write_text(json.dumps({"threshold": 0.25}))
    assert nb["load_reader"](copy).threshold == 0.25


def test_a_ten_digit_model_never_says_not_a_digit(nb, saved_model):
    """Part I's model has ten outputs: whatever it is shown, it names a digit."""
    rng = np.random.default_rng(0)
    for make in nb["TEACH"].values():
        answer, probability = nb["predict_digit"](saved_model, make(rng))
        assert isinstance(answer, int) and 0 <= answer <= 9 and 0 < probability <= 1


@pytest.mark.parametrize("kind", ["noise", "scribbles", "blobs", "letters, DejaVu Sans", "letters, 14 other fonts",
                                  "textures", "shapes", "photo crops"])
def test_the_reader_says_not_a_digit(nb, saved_reader, kind):
    """Of 100 fresh images of each kind (a seed the notebook does not use), the reader calls at least 90% of the
    taught kinds and 60% of the kinds never taught "not a digit" (the committed run: 96% to 100%, and 90% to
    100%); the threshold catches most of the rest as unsure (next test)."""
    rng = np.random.default_rng(12345)
    make = (nb["TEACH"] | nb["HELD_OUT"])[kind]
    answers = [answer for answer, _ in nb["predict_digits"](saved_reader, [make(rng) for _ in range(100)])]
    assert all(a in (None, nb["NOT_A_DIGIT"]) or isinstance(a, int) for a in answers)
    share = np.mean([a == nb["NOT_A_DIGIT"] for a in answers])
    assert share >= (0.9 if kind in nb["TEACH"] else 0.6), f"{kind}: only {share:.0%} called not a digit"


def test_the_reader_refuses_with_its_threshold(nb, saved_reader):
    """Of 50 fresh images of each kind never taught, at least 90% are refused ("not a digit" or unsure): the
    committed run refuses 99.0% of them, and the notebook 96.8% to 100% of each kind on seeds 1 to 3."""
    rng = np.random.default_rng(54321)
    images = [make(rng) for make in nb["HELD_OUT"].values() for _ in range(50)]
    answers = [answer for answer, _ in nb["predict_digits"](saved_reader, images)]
    refused = np.mean([a is None or a == nb["NOT_A_DIGIT"] for a in answers])
    assert refused >= 0.9, f"only {refused:.0%} of non-digits of kinds never taught were refused"


def test_the_reader_still_reads_digits(nb, mnist, saved_reader, saved_model):
    """Real digits are not called "not a digit", over sets and with margins: 2,000 MNIST test digits (at most
    0.5% called so; the committed run: 0.15%), 300 in each other style (at most 5%; the committed run: 1.0% or
    less), the 897 held-out digits of scikit-learn (at most 5%, and read at least as well as by Part I's model,
    less 2 points; the committed run: 1.7%, and 94.9% right against Part I's 89.0%)."""
    _, _, x_test, y_test = mnist
    probs = saved_reader.predict(nb["prepare"](x_test[:2000]), batch_size=1000, verbose=0)
    assert np.mean(probs.argmax(axis=1) == 10) <= 0.005
    assert np.mean(probs.argmax(axis=1) == y_test[:2000]) >= nb["ACCURACY_FLOOR"]
    rng = np.random.default_rng(2024)
    for style in nb["STYLES"]:
        images = [nb["restyle"](x, style, rng) for x in x_test[2000:2300].astype(np.float32) / 255]
        answers = [a for a, _ in nb["predict_digits"](saved_reader, images, min_confidence=0)]
        assert np.mean([a == nb["NOT_A_DIGIT"] for a in answers]) <= 0.05, f"{style}: called not a digit"
    handwriting = nb["load_digits"]()
    images, labels = handwriting.images[900:] / 16, handwriting.target[900:]
    reader_answers = [a for a, _ in nb["predict_digits"](saved_reader, images, min_confidence=0)]
    part1_answers = [a for a, _ in nb["predict_digits"](saved_model, images)]
    assert np.mean([a == nb["NOT_A_DIGIT"] for a in reader_answers]) <= 0.05
    assert np.mean(np.array(reader_answers, dtype=object) == labels) >= np.mean(np.array(part1_answers) == labels) - 0.02


def test_printed_digits_are_read(nb, saved_reader):
    """Of 100 digits printed in the fonts never taught, at least 95% are read right by the likeliest answer (the
    committed run: 99%)."""
    rng = np.random.default_rng(2025)
    labels = rng.integers(0, 10, 100)
    images = [nb["printed"](str(d), nb["OTHER_FONTS"], rng) for d in labels]
    answers = [a for a, _ in nb["predict_digits"](saved_reader, images, min_confidence=0)]
    assert np.mean(np.array(answers, dtype=object) == labels) >= 0.95


def test_errors_stay_errors_for_the_reader(nb):
    """Blank images and wrong types are errors, before any model is asked: never "not a digit"."""
    for image, error in [(np.zeros((28, 28), np.uint8), ValueError), (single_dot(), ValueError), ("x" * 3, FileNotFoundError),
                         ([1, 2, 3], TypeError)]:
        with pytest.raises(error):
            nb["predict_digit"](NoModel(), image)
