"""Real CLIP embeddings that ship with labkit: Mind the Gap's 500 MSCOCO pairs through CLIP ViT-B/16.

    image, text = load_mindthegap_coco500()               # trained CLIP (OpenAI weights): the gap of a real model
    image, text = load_mindthegap_coco500("random")       # the same pairs through a random-init ViT-B/16

Liang et al. (*Mind the Gap*, NeurIPS 2022) released these arrays with their code under the MIT licence
(``labkit/data/reference/LICENSE``; data card ``data_cards/mindthegap_clip_coco500.md``). Row ``i`` of ``image``
and row ``i`` of ``text`` are a pair (an MSCOCO val2017 image and one of its captions); both are L2-normalised,
512-d, float32. They are read from the package itself (``importlib.resources``), so no download is needed.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["MINDTHEGAP_FILES", "load_mindthegap_coco500"]

#: variant -> file in ``labkit/data/reference/``
MINDTHEGAP_FILES = {
    "clip": "mindthegap_clip_vitb16_coco500.npy",
    "random": "mindthegap_clip_random_coco500.npy",
}


def load_mindthegap_coco500(variant: str = "clip") -> tuple[np.ndarray, np.ndarray]:
    """``(image, text)``: two float32 arrays (500, 512), row-aligned pairs, L2-normalised.

    ``variant="clip"``: CLIP ViT-B/16 with OpenAI's weights; ``"random"``: the same architecture at random init.
    """
    if variant not in MINDTHEGAP_FILES:
        raise ValueError(f"variant must be one of {sorted(MINDTHEGAP_FILES)}, got {variant!r}")
    name = MINDTHEGAP_FILES[variant]
    resource = resources.files("labkit.data").joinpath("reference", name)
    try:
        with resource.open("rb") as f:
            data = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"packaged reference file missing: labkit/data/reference/{name} "
                                "(reinstall labkit; it ships as package data)") from None
    if data.shape != (2, 500, 512) or data.dtype != np.float32:
        raise ValueError(f"labkit/data/reference/{name}: expected float32 (2, 500, 512), got {data.dtype} {data.shape}")
    return data[0], data[1]
