"""The shipped real-CLIP embeddings (Mind the Gap's 500 COCO pairs): loaded from the package, as published."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

import labkit
from labkit.data import load_mindthegap_coco500
from labkit.data.mindthegap import MINDTHEGAP_FILES
from labkit.metrics import modality_gap

ROOT = Path(labkit.__file__).resolve().parent.parent
# md5 of the upstream files Figure_1_Modality_Gap/features_clip{,_random}.npy (Weixin-Liang/Modality-Gap @ 8e20cb2)
MD5 = {"clip": "e6d9371c84e1e474b90c9b88de691477", "random": "ea08bf818f9341af3525665c43570312"}


@pytest.mark.parametrize("variant", ["clip", "random"])
def test_files_are_the_published_ones(variant):
    path = Path(labkit.__file__).parent / "data" / "reference" / MINDTHEGAP_FILES[variant]
    assert hashlib.md5(path.read_bytes()).hexdigest() == MD5[variant]


def test_shapes_norms_and_the_gap_of_a_real_clip():
    image, text = load_mindthegap_coco500()
    assert image.shape == text.shape == (500, 512) and image.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, atol=1e-3)
    assert modality_gap(image, text) == pytest.approx(0.8514, abs=1e-3)  # Mind the Gap quotes 0.82 on all of COCO
    r_image, r_text = load_mindthegap_coco500("random")
    assert modality_gap(r_image, r_text) == pytest.approx(1.1361, abs=1e-3)
    # pairs are matched: each image's own caption is its most similar caption far more often than chance
    assert (np.argmax(image @ text.T, axis=1) == np.arange(500)).mean() > 0.4
    with pytest.raises(ValueError, match="variant"):
        load_mindthegap_coco500("openai")


def test_packaged_not_read_from_outside():
    pyproject = (ROOT / "pyproject.toml").read_text()
    package_data = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert '"data/reference/*.npy"' in package_data and '"data/reference/LICENSE"' in package_data
    for path in (ROOT / "labkit").rglob("*.py"):
        text = path.read_text()
        assert "/shared/reference" not in text and "../shared" not in text, path
