"""Caption styles beyond the embedded world's two: registered with :func:`~labkit.data.world.register_caption_style`.

``"casual"`` — the **Flickr8k analogue** of seed 004's zero-shot test (Table 3: train on COCO, test on Flickr8k).
The images, scenes, topics and splits are those of any embedded world (same generator); only the captions change:

* **another grammar**: chatty first-person sentences with verbs ("someone drew …", "i can see three things here:
  …", "a ball in cherry sitting on top of …"), colours after the noun ("a ball in cherry"), counts written as
  "a bunch of"/"a couple of", no "themed picture", no "stands out against";
* **another vocabulary**: each shape, colour, size, position and relation is named by its canonical word (shared
  with ``literal``: "circle", "red", "small", "above" …) half of the time and by a word that ``literal`` never uses
  otherwise ("ball", "cherry", "teeny", "up top" …). So about half of the content words of a ``casual`` caption are
  unknown to a model trained on ``literal`` captions — as Flickr8k's wording differs from COCO's, but more sharply.

Every caption stays true of its image (it names drawn objects only), so a model that generalises across wording
can transfer. Importing :mod:`labkit.data` registers the style: ``make_world(pairing="casual")``.
"""

from __future__ import annotations

import random
from collections import Counter

from .world import TOPICS, _count, _distinct, _join, register_caption_style

__all__ = ["casual_captions", "CASUAL_SHAPES", "CASUAL_COLOURS", "CASUAL_SIZES", "CASUAL_POSITIONS",
           "CASUAL_RELATIONS", "P_CANONICAL"]

P_CANONICAL = 0.5  # share of mentions that use the canonical (literal-style) word

#: canonical word first, then words the literal style never uses
CASUAL_SHAPES: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "round blob"),
    "square": ("square", "cube", "tile"),
    "triangle": ("triangle", "pyramid", "arrowhead"),
    "diamond": ("diamond", "kite", "gem"),
    "cross": ("cross", "x mark", "cross sign"),
    "ring": ("ring", "halo", "circlet"),
    "bar": ("bar", "strip", "plank"),
    "star": ("star", "starburst", "sparkle"),
}
CASUAL_COLOURS: dict[str, tuple[str, ...]] = {
    "red": ("red", "cherry", "ruby"),
    "orange": ("orange", "peach", "copper"),
    "yellow": ("yellow", "mustard", "sunflower"),
    "green": ("green", "mint", "jade"),
    "blue": ("blue", "navy", "denim"),
    "purple": ("purple", "lavender", "grape"),
    "pink": ("pink", "salmon", "bubblegum"),
    "white": ("white", "pale", "chalky"),
}
CASUAL_SIZES: dict[str, tuple[str, ...]] = {"small": ("small", "teeny", "wee"), "large": ("large", "giant", "chunky")}
CASUAL_POSITIONS: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "over to the left", "way left"),
    "right": ("on the right", "over to the right", "way right"),
    "top": ("at the top", "up top", "up high"),
    "bottom": ("at the bottom", "down low", "down at the base"),
    "centre": ("in the middle", "smack in the middle", "dead centre"),
}
CASUAL_RELATIONS: dict[str, tuple[str, ...]] = {
    "left of": ("left of", "just left of", "beside and left of"),
    "right of": ("right of", "just right of", "beside and right of"),
    "above": ("above", "on top of", "up over"),
    "below": ("below", "underneath", "down beneath"),
}


def _word(table: dict[str, tuple[str, ...]], key: str, rng: random.Random) -> str:
    words = table[key]
    return words[0] if rng.random() < P_CANONICAL else rng.choice(words[1:])


def _thing(o: dict, rng: random.Random, article: bool = True) -> str:
    """'a teeny ball in cherry' (colour after the noun) or 'a cherry ball'."""
    shape, colour = _word(CASUAL_SHAPES, o["shape"], rng), _word(CASUAL_COLOURS, o["colour"], rng)
    size = _word(CASUAL_SIZES, o["size"], rng) + " " if rng.random() < 0.4 else ""
    core = f"{size}{shape} in {colour}" if rng.random() < 0.5 else f"{size}{colour} {shape}"
    if not article:
        return core
    return ("an " if core[0] in "aeiou" else "a ") + core


def _drew(sc, rng):
    return f"{rng.choice(('someone drew', 'somebody painted', 'a kid doodled'))} {_join([_thing(o, rng) for o in sc['objects']])}"


def _see(sc, rng):
    n = len(sc["objects"])
    if n == 1:
        return f"i can only see one thing here, {_thing(sc['objects'][0], rng)}"
    things = "things" if rng.random() < 0.5 else "bits"
    return f"i can see {_count(n)} {things} here: {_join([_thing(o, rng) for o in sc['objects']])}"


def _sitting(sc, rng):
    rel = sc["relation"]
    if rel is None:
        o = sc["objects"][0]
        return f"{_thing(o, rng)} sitting {_word(CASUAL_POSITIONS, o['position'], rng)} all alone"
    a, b = sc["objects"][rel["subject"]], sc["objects"][rel["object"]]
    verb = rng.choice(("sitting", "hanging out", "floating"))
    return f"{_thing(a, rng)} {verb} {_word(CASUAL_RELATIONS, rel['predicate'], rng)} {_thing(b, rng)}"


def _where(sc, rng):
    objs = rng.sample(sc["objects"], min(2, len(sc["objects"])))
    parts = [f"{_thing(o, rng)} {_word(CASUAL_POSITIONS, o['position'], rng)}" for o in objs]
    return "there's " + " and ".join(parts)


def _biggest(sc, rng):
    o = max(sc["objects"], key=lambda ob: ob["salience"])
    return f"the first thing you notice is {_thing(o, rng)}"


def _bunch(sc, rng):
    by_shape = Counter(o["shape"] for o in sc["objects"])
    parts = []
    for shape, k in by_shape.items():
        word = _word(CASUAL_SHAPES, shape, rng)
        plural = word + ("es" if word.endswith(("s", "x", "sh", "ch")) else "s")
        parts.append(("a " if word[0] not in "aeiou" else "an ") + word if k == 1 else
                     f"{'a couple of' if k == 2 else 'a bunch of'} {plural}")
    return f"just {_join(parts)} on a plain background"


def _place(sc, rng):
    topic = TOPICS[sc["topic"]]
    place = rng.choice(topic.places)
    return f"looks like it could be {place}, with {_join([_thing(o, rng) for o in sc['objects']])}"


CASUAL_STYLES = (_drew, _see, _sitting, _where, _biggest, _bunch, _place)


def casual_captions(scene: dict, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct casual captions that are all true of the drawn scene (the Flickr8k analogue)."""
    return _distinct(lambda style: style(scene, rng), CASUAL_STYLES, rng, n)


register_caption_style("casual", casual_captions)
