"""Bad SALICON inputs, one parametrised table in the style of tests/test_bad_inputs.py: each case must fail with a
clear error naming the file and the field or entry (or take its documented fallback, tested in tests/test_salicon.py:
``on_size_mismatch="resize"``). Fixtures are tests/test_salicon.py's, in the real formats (COCO captions JSON + JPEGs,
SALICON fixations JSON with 1-indexed ``[row, col]`` lists, grey-level PNG maps named after the COCO files); each
case breaks one thing. Image 25 is the dataset's item 1 (item 0 is image 9)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.data import DataFormatError, SaliconCaptions
from test_salicon import H, W, _name, salicon  # noqa: F401  (salicon: the fixture)

FIX = "fixations_train2014.json"
MAP_25 = re.escape(_name(25).replace(".jpg", ".png"))


def _open(s, **kw):
    return SaliconCaptions(s["images"], s["captions"], s["fixations"], s["maps"], **kw)


def _edit_fixations(s, edit):
    data = json.loads(s["fixations"].read_text())
    edit(data)
    s["fixations"].write_text(json.dumps(data))
    return _open(s)


def _fix(value):
    return lambda s: _edit_fixations(s, lambda d: d["annotations"][0].update(fixations=value))


def _item(i, **kw):
    return lambda s: _open(s, **kw)[i]


CASES = {
    # ------------------------------------------------------------------ the fixations JSON
    "fixations file missing": (
        lambda s: (s["fixations"].unlink(), _open(s)), FileNotFoundError, re.escape(FIX)),
    "fixations file not JSON": (
        lambda s: (s["fixations"].write_text("{'images': ["), _open(s)), DataFormatError, FIX + ": not valid JSON"),
    "top level not an object": (
        lambda s: (s["fixations"].write_text("[]"), _open(s)), DataFormatError, FIX + ": top level must be"),
    "no annotations list": (
        lambda s: _edit_fixations(s, lambda d: d.update(annotations={"0": []})), DataFormatError,
        FIX + ": missing or non-list top-level field 'annotations'"),
    "annotation without fixations": (
        lambda s: _edit_fixations(s, lambda d: d["annotations"][0].pop("fixations")), DataFormatError,
        FIX + ": annotation 0 has no field 'fixations'"),
    "annotation without image_id": (
        lambda s: _edit_fixations(s, lambda d: d["annotations"][1].pop("image_id")), DataFormatError,
        FIX + ": annotation 1 has no field 'image_id'"),
    "fixations a string": (_fix("5,10"), DataFormatError, FIX + r": annotation 0: 'fixations' must be a list"),
    "fixations a number": (_fix(7), DataFormatError, FIX + r": annotation 0: 'fixations' must be a list"),
    "fixations null": (_fix(None), DataFormatError, FIX + r": annotation 0: 'fixations' must be a list"),
    "fixations an object": (_fix({"row": 5, "col": 10}), DataFormatError, FIX + r": annotation 0: 'fixations'"),
    "fixations flat": (_fix([5, 10]), DataFormatError, FIX + r": annotation 0: 'fixations' must be a list of"),
    "fixation of three numbers": (_fix([[5, 10, 2]]), DataFormatError, FIX + r": annotation 0: 'fixations'"),
    "fixations ragged": (_fix([[5, 10], [3]]), DataFormatError, FIX + r": annotation 0: 'fixations'"),
    "fixation not an integer": (_fix([[5.5, 10]]), DataFormatError, FIX + r": annotation 0: .*integer pairs"),
    "fixation as strings": (_fix([["5", "10"]]), DataFormatError, FIX + r": annotation 0: .*integer pairs"),
    "row 0 (1-indexed)": (_fix([[0, 10]]), DataFormatError, FIX + rf": annotation 0: a fixation lies outside the "
                                                            rf"{H} × {W} image"),
    "col 0 (1-indexed)": (_fix([[5, 0]]), DataFormatError, FIX + r": annotation 0: a fixation lies outside"),
    "row past the height": (_fix([[H + 1, 10]]), DataFormatError, FIX + r": annotation 0: a fixation lies outside"),
    "col past the width": (_fix([[5, W + 1]]), DataFormatError, FIX + r": annotation 0: a fixation lies outside"),
    "negative coordinate": (_fix([[-3, 10]]), DataFormatError, FIX + r": annotation 0: a fixation lies outside"),
    "unknown image id": (
        lambda s: _edit_fixations(s, lambda d: d["annotations"][0].update(image_id=777)), DataFormatError,
        FIX + ": annotation 0 refers to unknown image_id 777"),
    "image entry without width": (
        lambda s: _edit_fixations(s, lambda d: d["images"][0].pop("width")), DataFormatError,
        FIX + ": image 0 has no field 'width'"),
    "repeated image id": (
        lambda s: _edit_fixations(s, lambda d: d["images"].append(dict(d["images"][0]))), DataFormatError,
        FIX + ": image 3 repeats id 9"),
    # ------------------------------------------------------------------ maps and images
    "map missing": (
        lambda s: ((s["maps"] / _name(25).replace(".jpg", ".png")).unlink(), _open(s)[1]), FileNotFoundError,
        MAP_25),
    "map missing, checked up front": (
        lambda s: ((s["maps"] / _name(25).replace(".jpg", ".png")).unlink(), _open(s, check_files=True)),
        FileNotFoundError, "saliency map.*" + MAP_25),
    "map of the wrong size": (
        lambda s: (Image.fromarray(np.full((H // 2, W // 2), 200, np.uint8), mode="L").save(
            s["maps"] / _name(25).replace(".jpg", ".png")), _open(s)[1]), DataFormatError,
        MAP_25 + rf": saliency map is {W // 2} × {H // 2} \(w × h\) but its image .* is {W} × {H}"),
    "map unreadable": (
        lambda s: ((s["maps"] / _name(25).replace(".jpg", ".png")).write_bytes(b"\x89PNG not really"),
                   _open(s)[1]), DataFormatError, MAP_25 + ": cannot decode saliency map"),
    "map all zeros": (
        lambda s: (Image.fromarray(np.zeros((H, W), np.uint8), mode="L").save(
            s["maps"] / _name(25).replace(".jpg", ".png")), _open(s)[1]), DataFormatError,
        "saliency map of " + re.escape(_name(25)) + " is all zeros"),
    "image unreadable": (
        lambda s: ((s["images"] / _name(25)).write_bytes(b"\xff\xd8\xff truncated jpeg"), _open(s)[1]),
        DataFormatError, re.escape(_name(25)) + ": cannot decode image"),
    "image missing": (
        lambda s: ((s["images"] / _name(25)).unlink(), _open(s)[1]), FileNotFoundError, re.escape(_name(25))),
    "maps folder missing": (
        lambda s: SaliconCaptions(s["images"], s["captions"], s["fixations"], s["tmp"] / "no_maps"),
        FileNotFoundError, "saliency-map folder"),
    # ------------------------------------------------------------------ parameters
    "no saliency source": (lambda s: SaliconCaptions(s["images"], s["captions"]), ValueError, "fixations_file"),
    "unknown size policy": (_item(0, on_size_mismatch="crop"), ValueError, "on_size_mismatch must be one of"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_salicon_input_is_named(salicon, name):  # noqa: F811
    build, error, match = CASES[name]
    with pytest.raises(error, match=match) as caught:
        build(salicon)
    if isinstance(caught.value, FileNotFoundError):  # the full path, for tools
        assert caught.value.filename and Path(caught.value.filename).is_absolute()
