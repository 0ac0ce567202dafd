"""The draw-a-digit canvas, Python side: the widget is driven in-process, the way the browser drives it.

The cells tagged "canvas" are run on top of the notebook's "library" cells, with the saved reader as `reader` and the
threshold of the notebook's last run (artifacts/summary.json) as `threshold`.
While the canvas is developed outside the notebook, CANVAS_NOTEBOOK=<path> takes the "canvas" cells from that
notebook instead, after its cells tagged "standin" (stand-ins for what the notebook does not have yet; one of
them may define `reader`).
"""

import ast
import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import NOTEBOOK, StandIn, tagged_sources

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run_cell(code, namespace, filename):
    """Run a cell's code like a notebook does: a trailing expression is displayed."""
    tree = ast.parse(code, filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        if value is not None:
            namespace["display"](value)


@pytest.fixture(scope="module")
def canvas(nb, request):
    """A fresh namespace holding what the canvas cells define; `_shown` lists what they displayed."""
    source = Path(os.environ.get("CANVAS_NOTEBOOK", NOTEBOOK))
    namespace, shown = dict(nb), []
    namespace["display"] = lambda *objs, **kwargs: shown.extend((obj, kwargs) for obj in objs)
    for code in tagged_sources("standin", source) if source != NOTEBOOK else []:
        run_cell(code, namespace, str(source))
    if "reader" not in namespace:
        namespace["reader"] = request.getfixturevalue("saved_reader")
    cells = tagged_sources("canvas", source)
    assert cells, f"{source} has no code cell tagged 'canvas'"
    for code in cells:
        run_cell(code, namespace, str(source))
    namespace["_shown"] = shown
    return namespace


@pytest.fixture
def stand_in_canvas(canvas):
    """The canvas's namespace, in which the test puts a stand-in reader; the real one is put back after."""
    real = canvas["reader"]
    yield canvas
    canvas["reader"] = real


def png_url(image):
    """A PIL image as the browser sends it: a PNG data URL."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def drawing(digit, shift=(0, 0), scale=1.0, width=18):
    """A digit as drawn on the 280x280 canvas: dark strokes on a transparent image, off-centre."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    ink = dict(fill=(20, 20, 20, 255), width=width)
    at = lambda x, y: (shift[0] + 140 + scale * (x - 140), shift[1] + 140 + scale * (y - 140))  # noqa: E731
    if digit == 7:
        pen.line([at(140, 30), at(250, 34), at(185, 200)], joint="curve", **ink)
    else:  # a 3: two bowls open to the left, high and to the right of the centre
        pen.arc([*at(130, 20), *at(220, 100)], start=190, end=90, **ink)
        pen.arc([*at(125, 95), *at(225, 190)], start=270, end=165, **ink)
    return image


def scribble(seed=7):
    """A tangle of strokes, the kind of thing people draw to see what the model says."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        pen.line([tuple(p) for p in rng.uniform(30, 250, (5, 2))], fill=(20, 20, 20, 255), width=18, joint="curve")
    return image


def answer_and_top(prediction):
    """The answer in words (first line) and the (digit, probability) pairs below it, from lines like '7: 98.3%'."""
    first, *rest = prediction.splitlines()
    pairs = [line.split(": ") for line in rest]
    return first, [(int(d), float(p.rstrip("%")) / 100) for d, p in pairs]


@pytest.mark.parametrize("best, threshold, first_line", [(7, 0.5, "7"), (7, 0.95, "unsure"),
                                                         (10, 0.95, "not a digit (90%)")])
def test_the_canvas_writes_the_readers_answer_and_clear_resets(stand_in_canvas, best, threshold, first_line):
    """With a stand-in reader that gives 0.9 to one answer, the page shows exactly the answer the rule gives, the
    three likeliest digits in order, and the 28x28 image the model got; Clear empties both. Training plays no part."""
    probs = np.linspace(0.001, 0.01, 11)                              # distinct, so no ties
    probs[best] = 0.9
    stand_in_canvas["reader"] = StandIn(probs, threshold=threshold)
    widget = stand_in_canvas["DigitCanvas"]()
    widget.png = png_url(drawing(7))
    answer, shown = answer_and_top(widget.prediction)
    assert answer == first_line, widget.prediction
    expected = sorted(range(10), key=lambda d: -probs[d])[:3]
    assert [d for d, _ in shown] == expected and shown[0][1] == pytest.approx(probs[expected[0]], abs=5e-4)
    seen = Image.open(io.BytesIO(base64.b64decode(widget.seen.split(",")[1])))
    assert seen.size == (28, 28) and np.asarray(seen).max() > 200, "the model's 28x28 view holds the drawing"
    assert np.array_equal(np.asarray(seen), np.uint8(255 * stand_in_canvas["reader"].seen[0][0, :, :, 0]))
    widget.png = ""  # what Clear sends
    assert widget.seen == "" and widget.prediction == ""


def test_drawn_digits_are_read(canvas):
    """Of 24 drawings of a 7 and a 3, moved, scaled and drawn with different pens, at least 80% have the drawn
    digit as the likeliest one (the committed run's reader: 23). A set, so that no single drawing decides."""
    rng = np.random.default_rng(3)
    right = 0
    for k in range(24):
        digit = (7, 3)[k % 2]
        widget = canvas["DigitCanvas"]()
        widget.png = png_url(drawing(digit, shift=rng.integers(-30, 30, 2), scale=rng.uniform(0.6, 1.1),
                                     width=int(rng.integers(12, 24))))
        answer, shown = answer_and_top(widget.prediction)
        assert len(shown) == 3 and len({d for d, _ in shown}) == 3, widget.prediction
        assert shown[0][1] >= shown[1][1] >= shown[2][1] >= 0
        right += shown[0][0] == digit
    assert right >= 0.8 * 24, f"only {right} of 24 drawn digits read right"


def test_scribbles_are_refused(canvas):
    """Of 50 scribbles, at least 80% are refused: "not a digit" or unsure (the committed run: 100%)."""
    answers = []
    for seed in range(50):
        widget = canvas["DigitCanvas"]()
        widget.png = png_url(scribble(seed))
        answers.append(widget.prediction.splitlines()[0])
        assert widget.seen.startswith("data:image/png;base64,")
    refused = np.mean([a.startswith("not a digit") or a == "unsure" for a in answers])
    assert refused >= 0.8, f"only {refused:.0%} of 50 scribbles refused: {answers}"


def test_a_blank_canvas_says_why_instead_of_predicting(canvas):
    widget = canvas["DigitCanvas"]()
    widget.png = png_url(Image.new("RGBA", (280, 280), (0, 0, 0, 0)))
    assert widget.prediction.startswith("no digit found") and widget.seen == ""


def test_without_a_kernel_a_line_of_text_stands_in(canvas):
    """GitHub and nbconvert cannot run the widget: its output's text/plain says why, in one fixed line."""
    widgets = [obj for obj, _ in canvas["_shown"] if isinstance(obj, canvas["DigitCanvas"])]
    assert len(widgets) == 1, "the canvas cells display the widget once"
    data, _ = widgets[0]._repr_mimebundle_()
    assert WIDGET_VIEW in data, "the live widget is in the output for front ends with a kernel"
    assert "live kernel" in data["text/plain"] and "\n" not in data["text/plain"]
    assert data["text/plain"] == repr(canvas["DigitCanvas"]()), "the stand-in never varies between runs"


def test_the_committed_notebook_carries_no_widget_state():
    """Saved widget state would make front ends and nbconvert show a dead canvas instead of the line of text."""
    metadata = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["metadata"]
    assert "widgets" not in metadata, "run nbconvert with --ExecutePreprocessor.store_widget_state=False"
