"""Caption styles with controlled *information imbalance* (Schrodi et al., *Two Effects, One Trigger*, ICLR 2025).

Schrodi et al. trace both the modality gap and CLIP's object bias to one trigger: a caption says less than its
image shows. On their synthetic MAD data they vary how many of an object's attributes the captions name, and the
gap shrinks as captions become complete. The embedded world's objects have four attributes — shape, colour, size,
position — so the styles registered here are::

    make_world(pairing="attributes_k")      # k = 0, 1, 2, 3, 4

in which every caption lists every drawn object, naming exactly ``k`` of its four attributes ("a red shape at the
top" names colour and position; an unnamed shape is "shape"). Which ``k`` attributes of an object are named is drawn
once per scene and kept in all five captions of the image, so the text never carries the rest; the captions differ
only in wording and the order of the objects. ``attributes_4`` is complete; ``attributes_0`` only says how many
shapes there are. Images, scenes, topics and splits are those of every other style of the same world seed (the
registry in :mod:`labkit.data.world` gives each style its own caption stream).
"""

from __future__ import annotations

import random

from .world import COUNT_WORDS, POSITION_WORDS, _distinct, _join, register_caption_style

__all__ = ["ATTRIBUTES", "IMBALANCE_STYLES", "attribute_captions", "imbalance_style"]

ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "size", "position")


def _phrase(obj: dict, named: frozenset[str]) -> str:
    """'large red circle on the left' with only the named attributes (an unnamed shape is 'shape')."""
    words = []
    if "size" in named:
        words.append(obj["size"])
    if "colour" in named:
        words.append(obj["colour"])
    words.append(obj["shape"] if "shape" in named else "shape")
    text = " ".join(words)
    if "position" in named:
        text += " " + POSITION_WORDS[obj["position"]][0]
    return text


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


_TEMPLATES = (
    "{list}",
    "a picture of {list}",
    "an image with {list}",
    "there is {list}",
    "this shows {list}",
    "a drawing of {list}",
    "{count}: {list}",
)


def attribute_captions(k: int):
    """The caption writer ``writer(scene, rng, n) -> n captions`` that names ``k`` attributes of every object."""
    if not (isinstance(k, int) and 0 <= k <= len(ATTRIBUTES)):
        raise ValueError(f"k must be an int in 0..{len(ATTRIBUTES)}, got {k!r}")

    def write(scene: dict, rng: random.Random, n: int = 5) -> list[str]:
        named = [frozenset(rng.sample(ATTRIBUTES, k)) for _ in scene["objects"]]  # fixed for this image
        phrases = [_phrase(o, s) for o, s in zip(scene["objects"], named)]
        m = len(phrases)
        count = f"{COUNT_WORDS[m] if m < len(COUNT_WORDS) else m} shape{'s' if m > 1 else ''}"

        def one(template: str) -> str:
            order = list(phrases)
            rng.shuffle(order)
            return template.format(list=_join([_with_article(p) for p in order]), count=count)

        return _distinct(one, _TEMPLATES, rng, n)

    write.__name__ = f"attributes_{k}_captions"
    write.__doc__ = f"Captions naming {k} of each object's {len(ATTRIBUTES)} attributes (information imbalance)."
    return write


def imbalance_style(k: int) -> str:
    """The registered style name for ``k`` named attributes: ``attributes_k``."""
    if not (isinstance(k, int) and 0 <= k <= len(ATTRIBUTES)):
        raise ValueError(f"k must be an int in 0..{len(ATTRIBUTES)}, got {k!r}")
    return f"attributes_{k}"


IMBALANCE_STYLES: tuple[str, ...] = tuple(imbalance_style(k) for k in range(len(ATTRIBUTES) + 1))
for _k, _name in enumerate(IMBALANCE_STYLES):
    register_caption_style(_name, attribute_captions(_k))
