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

from conftest import NOTEBOOK, tagged_sources

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
        namespace["threshold"] = request.getfixturevalue("summary")["confidence threshold"]
    cells = tagged_sources("canvas", source)
    assert cells, f"{source} has no code cell tagged 'canvas'"
    for code in cells:
        run_cell(code, namespace, str(source))
    namespace["_shown"] = shown
    return namespace


def png_url(image):
    """A PIL image as the browser sends it: a PNG data URL."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def drawing(digit):
    """A digit as drawn on the 280x280 canvas: dark strokes on a transparent image, off-centre."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    ink = dict(fill=(20, 20, 20, 255), width=18)
    if digit == 7:
        pen.line([(140, 30), (250, 34), (185, 200)], joint="curve", **ink)
    else:  # a 3: two bowls open to the left, high and to the right of the centre
        pen.arc([130, 20, 220, 100], start=190, end=90, **ink)
        pen.arc([125, 95, 225, 190], start=270, end=165, **ink)
    return image


def scribble():
    """A tangle of strokes, the kind of thing people draw to see what the model says."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    rng = np.random.default_rng(7)
    for _ in range(6):
        pen.line([tuple(p) for p in rng.uniform(30, 250, (5, 2))], fill=(20, 20, 20, 255), width=18, joint="curve")
    return image


def answer_and_top(prediction):
    """The answer in words (first line) and the (digit, probability) pairs below it, from lines like '7: 98.3%'."""
    first, *rest = prediction.splitlines()
    pairs = [line.split(": ") for line in rest]
    return first, [(int(d), float(p.rstrip("%")) / 100) for d, p in pairs]


@pytest.mark.parametrize("digit", [7, 3])
def test_a_drawn_digit_is_read_and_clear_resets(canvas, digit):
    widget = canvas["DigitCanvas"]()
    widget.png = png_url(drawing(digit))
    answer, shown = answer_and_top(widget.prediction)
    assert answer == str(digit), f"drew a {digit}, the canvas answers:\n{widget.prediction}"
    assert len(shown) == 3 and len({d for d, _ in shown}) == 3, widget.prediction
    assert shown[0][0] == digit, f"drew a {digit}, the canvas shows:\n{widget.prediction}"
    assert 0 < shown[0][1] <= 1 and shown[0][1] >= shown[1][1] >= shown[2][1]
    assert widget.seen.startswith("data:image/png;base64,")
    seen = Image.open(io.BytesIO(base64.b64decode(widget.seen.split(",")[1])))
    assert seen.size == (28, 28) and np.asarray(seen).max() > 200, "the model's 28x28 view holds the digit"

    widget.png = ""  # what Clear sends
    assert widget.seen == "" and widget.prediction == ""


def test_a_scribble_is_not_a_digit(canvas):
    widget = canvas["DigitCanvas"]()
    widget.png = png_url(scribble())
    answer, shown = answer_and_top(widget.prediction)
    assert answer.startswith("not a digit"), f"drew a scribble, the canvas answers:\n{widget.prediction}"
    assert len(shown) == 3 and widget.seen.startswith("data:image/png;base64,")


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
