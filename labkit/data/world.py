"""The embedded world: seeded, procedurally generated image-text pairs.

Every notebook can train a tiny CLIP on it on a laptop CPU in about a minute.
Each pair is built in four small steps::

    sample_scene()      -> a structured scene: topic, background, 1-4 objects, a relation
    render_images()     -> RGB pixels (vectorised numpy, no per-pixel Python loops)
    literal_captions()  -> paraphrases of what is drawn              (pairing="literal")
    complementary_captions() -> "news article" texts about the topic,
                           naming things that are NOT drawn          (pairing="complementary")
    saliency_maps()     -> where a viewer would look (Gaussian blobs + centre bias)

Topics (farm, kitchen, ...) prefer some shapes, colours and a background tint, so
the topic is learnable from pixels and from words, but the preferences overlap and
are only preferences, so topics are not trivially separable.

The same seed gives byte-identical images, scenes, topics and splits in both
pairing modes; only the text differs. Usage::

    world = make_world(n_pairs=2000, seed=0)
    item = world.train[0]          # dict: image, captions, pair_id, topic, saliency, index
"""

from __future__ import annotations

import math
import random
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .base import ImageTextDataset, Transform
from .generated import WorldSplitView, WorldSplits

__all__ = [
    "EmbeddedWorld",
    "EmbeddedWorldDataset",
    "make_world",
    "sample_scene",
    "render_images",
    "literal_captions",
    "complementary_captions",
    "saliency_maps",
    "add_clutter",
    "SHAPES",
    "COLOURS",
    "SIZES",
    "POSITIONS",
    "RELATIONS",
    "TOPICS",
    "TOPIC_NAMES",
    "PAIRINGS",
    "CAPTION_STYLES",
    "register_caption_style",
    "SHAPE_WORDS",
    "COLOUR_WORDS",
]

# =========================================================================== vocabularies

#: shape name -> words a caption may use for it (first = canonical name)
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "dot", "round shape"),
    "square": ("square", "box", "block", "square tile"),
    "triangle": ("triangle", "wedge", "three-sided shape"),
    "diamond": ("diamond", "rhombus", "lozenge"),
    "cross": ("cross", "plus sign", "plus"),
    "ring": ("ring", "hoop", "donut", "loop"),
    "bar": ("bar", "stick", "rectangle", "slab"),
    "star": ("star", "five-pointed star", "star shape"),
}
SHAPES: tuple[str, ...] = tuple(SHAPE_WORDS)
#: drawn area of each shape in units of radius**2 (as rendered below); feeds the saliency score
SHAPE_AREA: dict[str, float] = {
    "circle": 3.14, "square": 2.69, "triangle": 1.71, "diamond": 2.4,
    "cross": 1.92, "ring": 2.74, "bar": 1.52, "star": 2.14,
}

#: colour name -> (base RGB, words a caption may use for it)
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 135, 25),
    "yellow": (240, 215, 40),
    "green": (50, 175, 60),
    "blue": (40, 80, 220),
    "purple": (140, 55, 190),
    "pink": (245, 115, 180),
    "white": (245, 245, 240),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "orange": ("orange", "tangerine", "amber"),
    "yellow": ("yellow", "golden", "lemon"),
    "green": ("green", "emerald", "lime"),
    "blue": ("blue", "azure", "cobalt"),
    "purple": ("purple", "violet", "plum"),
    "pink": ("pink", "rosy", "fuchsia"),
    "white": ("white", "ivory", "snow-white"),
}
COLOURS: tuple[str, ...] = tuple(COLOUR_RGB)

SIZES: tuple[str, ...] = ("small", "large")
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "large": ("large", "big", "huge"),
}
#: object "radius" range as a fraction of the image side
SIZE_RADIUS: dict[str, tuple[float, float]] = {"small": (0.09, 0.11), "large": (0.145, 0.175)}

#: named anchor positions (x, y) as fractions of the image side; y grows downwards
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.18, 0.5),
    "right": (0.82, 0.5),
    "top": (0.5, 0.18),
    "bottom": (0.5, 0.82),
    "centre": (0.5, 0.5),
}
POSITION_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "on the left side"),
    "right": ("on the right", "at the right", "on the right side"),
    "top": ("at the top", "near the top", "in the upper part"),
    "bottom": ("at the bottom", "near the bottom", "in the lower part"),
    "centre": ("in the centre", "in the middle", "at the center"),
}
POSITION_JITTER = 0.03  # fraction of the image side

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    "left of": ("left of", "to the left of", "on the left of"),
    "right of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over", "higher up than"),
    "below": ("below", "under", "beneath"),
}

N_OBJECT_WEIGHTS = (0.2, 0.35, 0.3, 0.15)  # P(1..4 objects)
P_TOPIC_SHAPE = 0.7  # P(shape drawn from the topic's preferred shapes)
P_TOPIC_COLOUR = 0.7  # P(colour drawn from the topic's preferred colours)
P_TOPIC_BACKGROUND = 0.8  # P(background tinted with the topic's own tint)
BACKGROUND_JITTER = 22  # +- per channel, on the tint
OBJECT_JITTER = 14  # +- per channel, on the object colour

PAIRINGS: tuple[str, ...] = ("literal", "complementary")

COUNT_WORDS = ("no", "one", "two", "three", "four", "five")


@dataclass(frozen=True)
class Topic:
    """A topic: what it prefers to draw, and how texts talk about it."""

    name: str
    tint: tuple[int, int, int]  # background colour
    tint_name: str  # how a caption names that background
    shapes: tuple[str, ...]  # preferred shapes
    colours: tuple[str, ...]  # preferred colours
    nouns: tuple[str, ...]  # "a <noun>", "this <noun>"
    places: tuple[str, ...]  # locative phrases, "on a farm"
    things: tuple[tuple[str, str], ...]  # typical things, never drawn: (singular, plural)


TOPICS: tuple[Topic, ...] = (
    Topic("farm", (160, 148, 95), "khaki", ("square", "triangle", "bar"), ("red", "yellow", "orange"),
          ("farm", "farmyard", "barnyard"),
          ("on a farm", "in the farmyard", "at the barnyard", "out in the fields"),
          (("tractor", "tractors"), ("barn", "barns"), ("cow", "cows"), ("sheep", "sheep"),
           ("hay bale", "hay bales"), ("rooster", "roosters"), ("pig", "pigs"), ("fence", "fences"))),
    Topic("kitchen", (205, 198, 182), "cream", ("circle", "square", "ring"), ("white", "red", "blue"),
          ("kitchen", "home kitchen", "restaurant kitchen"),
          ("in a kitchen", "in the kitchen", "at the stove", "by the kitchen counter"),
          (("kettle", "kettles"), ("frying pan", "frying pans"), ("toaster", "toasters"),
           ("teacup", "teacups"), ("spoon", "spoons"), ("oven", "ovens"), ("apron", "aprons"),
           ("mixing bowl", "mixing bowls"))),
    Topic("ocean", (60, 112, 145), "teal", ("triangle", "ring", "circle"), ("blue", "white", "yellow"),
          ("ocean", "sea", "coastline", "seaside"),
          ("at sea", "on the ocean", "by the seaside", "along the coast"),
          (("sailboat", "sailboats"), ("lighthouse", "lighthouses"), ("seagull", "seagulls"),
           ("anchor", "anchors"), ("wave", "waves"), ("surfer", "surfers"), ("dolphin", "dolphins"),
           ("buoy", "buoys"))),
    Topic("street", (118, 118, 124), "grey", ("bar", "square", "cross"), ("yellow", "white", "red"),
          ("street", "road", "avenue", "city street"),
          ("on a city street", "on the road", "downtown", "along the avenue"),
          (("taxi", "taxis"), ("bus", "buses"), ("traffic light", "traffic lights"),
           ("bicycle", "bicycles"), ("pedestrian", "pedestrians"), ("lamp post", "lamp posts"),
           ("parked car", "parked cars"), ("sidewalk", "sidewalks"))),
    Topic("forest", (55, 88, 55), "dark green", ("triangle", "diamond", "circle"), ("green", "orange", "purple"),
          ("forest", "woods", "woodland"),
          ("in a forest", "in the woods", "deep in the woodland", "on a forest trail"),
          (("pine tree", "pine trees"), ("deer", "deer"), ("mushroom", "mushrooms"), ("owl", "owls"),
           ("fox", "foxes"), ("fallen log", "fallen logs"), ("fern", "ferns"), ("squirrel", "squirrels"))),
    Topic("space", (22, 22, 40), "black", ("star", "circle", "ring"), ("white", "yellow", "purple"),
          ("space scene", "night sky", "cosmos"),
          ("in outer space", "in orbit", "far out in space", "among the planets"),
          (("rocket", "rockets"), ("planet", "planets"), ("astronaut", "astronauts"), ("comet", "comets"),
           ("satellite", "satellites"), ("moon", "moons"), ("space station", "space stations"),
           ("asteroid", "asteroids"))),
    Topic("desert", (198, 168, 112), "sandy", ("triangle", "diamond", "star"), ("orange", "yellow", "red"),
          ("desert", "dune field", "dry valley"),
          ("in the desert", "among the dunes", "in a dry valley", "out in the desert"),
          (("cactus", "cacti"), ("camel", "camels"), ("lizard", "lizards"), ("oasis", "oases"),
           ("scorpion", "scorpions"), ("palm tree", "palm trees"), ("tumbleweed", "tumbleweeds"),
           ("canyon", "canyons"))),
    Topic("party", (118, 72, 118), "mauve", ("star", "diamond", "circle"), ("pink", "purple", "blue"),
          ("party", "celebration", "birthday party", "festival"),
          ("at a party", "at a birthday party", "during a celebration", "at the festival"),
          (("balloon", "balloons"), ("birthday cake", "birthday cakes"), ("party hat", "party hats"),
           ("candle", "candles"), ("gift", "gifts"), ("streamer", "streamers"), ("cupcake", "cupcakes"),
           ("lantern", "lanterns"))),
)
TOPIC_NAMES: tuple[str, ...] = tuple(t.name for t in TOPICS)

MOODS = ("quiet", "busy", "sunny", "misty", "crowded", "peaceful", "chilly", "lively")
TIMES = ("in the morning", "at dusk", "at noon", "at night", "on a weekend", "this afternoon", "after the rain")

# saliency model
SALIENT_RATIO = 0.8  # objects scoring >= this fraction of the best are "salient"
NONSALIENT_WEIGHT = 0.25  # blob weight of non-salient objects, relative to their score
CENTRE_BIAS = 0.12  # share of the map given to a broad central Gaussian
CENTRE_SIGMA = 0.3  # its width, fraction of the image side

RENDER_CHUNK = 1024  # images rendered per vectorised batch (bounds memory)
NOISE = 10  # +- grain added to every pixel and channel


# =========================================================================== scenes

def sample_scene(rng: random.Random, image_size: int) -> dict:
    """Sample one scene: topic, background, 1-4 objects and (with >=2 objects) a relation.

    Objects are listed in drawing order (large ones first, so small ones stay visible).
    Coordinates (``x``, ``y``, ``radius``) are in pixels.
    """
    s = float(image_size)
    topic_id = rng.randrange(len(TOPICS))
    topic = TOPICS[topic_id]
    bg_topic = topic_id if rng.random() < P_TOPIC_BACKGROUND else rng.randrange(len(TOPICS))
    bg_rgb = [_jitter(c, BACKGROUND_JITTER, rng) for c in TOPICS[bg_topic].tint]

    n = rng.choices(range(1, 5), weights=N_OBJECT_WEIGHTS)[0]
    objects = []
    for pos in rng.sample(list(POSITIONS), n):
        shape = rng.choice(topic.shapes) if rng.random() < P_TOPIC_SHAPE else rng.choice(SHAPES)
        colour = rng.choice(topic.colours) if rng.random() < P_TOPIC_COLOUR else rng.choice(COLOURS)
        size = rng.choice(SIZES)
        ax, ay = POSITIONS[pos]
        objects.append({
            "shape": shape,
            "colour": colour,
            "size": size,
            "position": pos,
            "x": (ax + rng.uniform(-POSITION_JITTER, POSITION_JITTER)) * s,
            "y": (ay + rng.uniform(-POSITION_JITTER, POSITION_JITTER)) * s,
            "radius": rng.uniform(*SIZE_RADIUS[size]) * s,
            "rgb": [_jitter(c, OBJECT_JITTER, rng) for c in COLOUR_RGB[colour]],
        })
    objects.sort(key=lambda o: -o["radius"])  # draw large first
    _mark_salient(objects, bg_rgb, s)

    relation = None
    if n >= 2:
        a, b = rng.sample(range(n), 2)
        relation = {"subject": a, "predicate": _relation(objects[a], objects[b]), "object": b}
    return {
        "topic": topic_id,
        "topic_name": topic.name,
        "background": TOPICS[bg_topic].tint_name,
        "background_topic": bg_topic,
        "background_rgb": bg_rgb,
        "objects": objects,
        "relation": relation,
    }


def _jitter(c: int, amount: int, rng: random.Random) -> int:
    return int(min(255, max(0, c + rng.randint(-amount, amount))))


def _relation(a: dict, b: dict) -> str:
    """The spatial relation of ``a`` to ``b`` along the axis where they differ most."""
    dx, dy = b["x"] - a["x"], b["y"] - a["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx > 0 else "right of"
    return "above" if dy > 0 else "below"


def _mark_salient(objects: list[dict], bg_rgb: Sequence[int], s: float) -> None:
    """Score each object by drawn area x colour contrast with the background; flag the top ones."""
    for o in objects:
        contrast = math.dist(o["rgb"], bg_rgb) / (255.0 * math.sqrt(3.0))
        o["salience"] = SHAPE_AREA[o["shape"]] * (o["radius"] / s) ** 2 * (0.25 + contrast)
    best = max(o["salience"] for o in objects)
    for o in objects:
        o["salient"] = o["salience"] >= SALIENT_RATIO * best


#: where distractor clutter goes: the four corners, clear of the five anchor positions of the scene's objects
CORNERS: dict[str, tuple[float, float]] = {
    "top left": (0.13, 0.13), "top right": (0.87, 0.13), "bottom left": (0.13, 0.87), "bottom right": (0.87, 0.87),
}
CLUTTER_RADIUS = (0.07, 0.10)  # fraction of the image side: about a small object's size


def add_clutter(scenes: Sequence[dict], n: int, rng: random.Random, image_size: int) -> None:
    """Give every scene ``n`` distractor objects (``scene["clutter"]``), in place: random shapes and colours from
    the same vocabulary as the objects, in ``n`` of the four corners. They are drawn under the objects, no caption
    mentions them, and the saliency map (computed from ``scene["objects"]`` only) leaves them out."""
    s = float(image_size)
    for sc in scenes:
        items = []
        for corner in rng.sample(list(CORNERS), n):
            cx, cy = CORNERS[corner]
            colour = rng.choice(COLOURS)
            items.append({
                "shape": rng.choice(SHAPES), "colour": colour, "position": corner,
                "x": (cx + rng.uniform(-POSITION_JITTER, POSITION_JITTER)) * s,
                "y": (cy + rng.uniform(-POSITION_JITTER, POSITION_JITTER)) * s,
                "radius": rng.uniform(*CLUTTER_RADIUS) * s,
                "rgb": [_jitter(c, OBJECT_JITTER, rng) for c in COLOUR_RGB[colour]],
            })
        sc["clutter"] = items


# =========================================================================== rendering

def _shape_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Approximate signed distance (pixels, negative inside) to a shape of "radius" r
    centred at the origin; arrays broadcast (batch, H, W)."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return np.hypot(dx, dy) - r
    if shape == "ring":
        return np.abs(np.hypot(dx, dy) - 0.68 * r) - 0.32 * r
    if shape == "square":
        return np.maximum(ax, ay) - 0.82 * r
    if shape == "diamond":
        return (ax + ay - 1.1 * r) * 0.7071
    if shape == "triangle":  # pointing up; circumradius 1.15 r
        h = 0.5 * 1.15 * r
        return np.maximum(np.maximum(dy - h, -0.5 * dy + 0.866 * dx - h), -0.5 * dy - 0.866 * dx - h)
    if shape == "cross":
        arm, half = 0.95 * r, 0.3 * r
        return np.minimum(np.maximum(ax - arm, ay - half), np.maximum(ax - half, ay - arm))
    if shape == "bar":
        return np.maximum(ax - 1.0 * r, ay - 0.38 * r)
    if shape == "star":  # five points, one pointing up
        theta = np.arctan2(dx, -dy)
        u = np.abs(((theta / (2 * np.pi / 5)) + 0.5) % 1.0 - 0.5) * 2.0  # 0 at a tip, 1 between
        return np.hypot(dx, dy) - (1.15 * r * (1.0 - u) + 0.45 * r * u)
    raise ValueError(f"unknown shape {shape!r}")


def _backgrounds(bg_rgb: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Tinted backgrounds with faint stripes and an illumination gradient: float32 (n, H, W, 3)."""
    n = len(bg_rgb)
    g = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(g, g, indexing="ij")
    angle = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    freq = rng.uniform(2.0, 7.0, (n, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    amp = rng.uniform(3.0, 12.0, (n, 1, 1)).astype(np.float32)
    tilt = rng.uniform(-14.0, 14.0, (n, 2, 1, 1)).astype(np.float32)
    shade = amp * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
    shade += tilt[:, 0] * (xx - 0.5) + tilt[:, 1] * (yy - 0.5)
    return bg_rgb[:, None, None, :].astype(np.float32) + shade[..., None]


def _paint_layer(img: np.ndarray, rows: list[tuple[int, dict]], size: int) -> None:
    """Alpha-blend one object into each listed image, in place.

    Works on a fixed-size window around each object (objects never reach further
    than ~0.22 x size from their centre), gathered and scattered with fancy indexing.
    """
    half = min(size // 2, int(math.ceil(0.22 * size)) + 1)
    win = np.arange(2 * half)
    idx = np.array([i for i, _ in rows])
    x = np.array([o["x"] for _, o in rows], dtype=np.float32)
    y = np.array([o["y"] for _, o in rows], dtype=np.float32)
    x0 = np.clip(np.rint(x).astype(int) - half, 0, size - 2 * half)
    y0 = np.clip(np.rint(y).astype(int) - half, 0, size - 2 * half)
    rows_ix = (y0[:, None] + win)[:, :, None]  # (m, w, 1)
    cols_ix = (x0[:, None] + win)[:, None, :]  # (m, 1, w)
    # pixel-centre offsets from the object centre, (m, w, w)
    dy = (rows_ix + 0.5 - y[:, None, None]).astype(np.float32)
    dx = (cols_ix + 0.5 - x[:, None, None]).astype(np.float32)
    r = np.array([o["radius"] for _, o in rows], dtype=np.float32)[:, None, None]
    shapes = np.array([SHAPES.index(o["shape"]) for _, o in rows])
    alpha = np.empty(dx.shape[:1] + (2 * half, 2 * half), dtype=np.float32)
    for k, shape in enumerate(SHAPES):
        m = shapes == k
        if m.any():
            alpha[m] = np.clip(0.5 - _shape_distance(shape, dx[m], dy[m], r[m]), 0.0, 1.0)
    rgb = np.array([o["rgb"] for _, o in rows], dtype=np.float32)[:, None, None, :]
    flat = img.reshape(-1, 3)  # a view: (n*H*W, 3)
    where = (idx[:, None, None] * size + rows_ix) * size + cols_ix  # (m, w, w) pixel numbers
    patch = np.take(flat, where, axis=0)  # (m, w, w, 3)
    a = alpha[..., None]
    flat[where] = patch + a * (rgb - patch)


def render_images(scenes: Sequence[dict], image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Render scenes to uint8 RGB images (n, H, W, 3).

    Vectorised over images: background for a whole chunk at once, then objects
    layer by layer (the k-th object of every image at once, grouped by shape),
    then noise over everything. Edges are anti-aliased over about one pixel.
    """
    out = np.empty((len(scenes), image_size, image_size, 3), dtype=np.uint8)
    for start in range(0, len(scenes), RENDER_CHUNK):
        chunk = scenes[start:start + RENDER_CHUNK]
        bg = np.array([sc["background_rgb"] for sc in chunk], dtype=np.float32)
        img = _backgrounds(bg, image_size, rng)
        for layer in range(max((len(sc.get("clutter", ())) for sc in chunk), default=0)):  # under the objects
            rows = [(i, sc["clutter"][layer]) for i, sc in enumerate(chunk) if len(sc.get("clutter", ())) > layer]
            if rows:
                _paint_layer(img, rows, image_size)
        for layer in range(len(N_OBJECT_WEIGHTS)):
            rows = [(i, sc["objects"][layer]) for i, sc in enumerate(chunk) if len(sc["objects"]) > layer]
            if rows:
                _paint_layer(img, rows, image_size)
        # grain: uniform integer noise in [-NOISE, NOISE] (much cheaper than Gaussian draws)
        img += rng.integers(-NOISE, NOISE + 1, img.shape, dtype=np.int8)
        np.clip(img, 0, 255, out=img)
        out[start:start + len(chunk)] = np.rint(img, out=img)
    return out


# =========================================================================== saliency

def saliency_maps(scenes: Sequence[dict], image_size: int) -> np.ndarray:
    """Where a viewer looks: float32 (n, H, W), each map summing to 1.

    A Gaussian blob (sigma ~ 0.7 x object radius) on every salient object (weight 1)
    and weaker ones on the other objects (weight NONSALIENT_WEIGHT x relative score),
    mixed with a broad central Gaussian (share CENTRE_BIAS): viewers look at big,
    contrasting things, and a little at the middle of the frame.
    """
    g = np.arange(image_size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(g, g, indexing="ij")
    c = image_size / 2.0
    centre = np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * (CENTRE_SIGMA * image_size) ** 2))
    centre /= centre.sum()
    out = np.empty((len(scenes), image_size, image_size), dtype=np.float32)
    for i, sc in enumerate(scenes):
        best = max(o["salience"] for o in sc["objects"])
        blobs = np.zeros((image_size, image_size), dtype=np.float32)
        for o in sc["objects"]:
            w = 1.0 if o["salient"] else NONSALIENT_WEIGHT * o["salience"] / best
            sigma = max(0.7 * o["radius"], 0.8)
            blobs += w * np.exp(-((xx - o["x"]) ** 2 + (yy - o["y"]) ** 2) / (2 * sigma ** 2))
        m = (1.0 - CENTRE_BIAS) * blobs / blobs.sum() + CENTRE_BIAS * centre
        out[i] = m / m.sum()
    return out


# =========================================================================== captions: helpers

def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "sh", "ch")) else "s")


def _finish(text: str, rng: random.Random) -> str:
    """COCO-like surface: capitalised, usually with a full stop."""
    text = " ".join(text.split())
    text = text[0].upper() + text[1:]
    return text + "." if rng.random() < 0.6 else text


def _np(o: dict, rng: random.Random, article: str | None = "a", p_size: float = 0.5,
        p_syn: float = 0.35) -> str:
    """A noun phrase for a drawn object: 'a small crimson disc', 'the red circle', 'blue square'."""
    words = []
    if rng.random() < p_size:
        words.append(rng.choice(SIZE_WORDS[o["size"]]))
    words.append(rng.choice(COLOUR_WORDS[o["colour"]]) if rng.random() < p_syn else o["colour"])
    words.append(rng.choice(SHAPE_WORDS[o["shape"]]) if rng.random() < p_syn else o["shape"])
    phrase = " ".join(words)
    if article == "a":
        return _article(phrase)
    return f"{article} {phrase}" if article else phrase


def _count(n: int) -> str:
    return COUNT_WORDS[n] if n < len(COUNT_WORDS) else str(n)


# =========================================================================== captions: literal

def _lit_relation(sc: dict, rng: random.Random) -> str:
    rel = sc["relation"]
    if rel is None:
        return _lit_single(sc, rng)
    a, b = sc["objects"][rel["subject"]], sc["objects"][rel["object"]]
    core = f"{_np(a, rng)} {rng.choice(RELATION_WORDS[rel['predicate']])} {_np(b, rng)}"
    opener = rng.choice(("", "", "there is ", "a picture of ", "an image showing "))
    extra = len(sc["objects"]) - 2
    tail = ""
    if extra and rng.random() < 0.5:
        tail = f", with {_count(extra)} other shape{'s' if extra > 1 else ''} nearby"
    elif rng.random() < 0.3:
        tail = f" on a {sc['background']} background"
    return opener + core + tail


def _lit_single(sc: dict, rng: random.Random) -> str:
    o = sc["objects"][0]
    return rng.choice((
        f"a single {_np(o, rng, None)}",
        f"just one shape: {_np(o, rng, p_size=1.0)}",
        f"{_np(o, rng)} on its own",
        f"{_np(o, rng, p_size=0.8)} on a {sc['background']} background",
        f"only {_np(o, rng)} {rng.choice(POSITION_WORDS[o['position']])}",
    ))


def _lit_inventory(sc: dict, rng: random.Random) -> str:
    objs = list(sc["objects"])
    if len(objs) == 1:
        return _lit_single(sc, rng)
    rng.shuffle(objs)
    listed = _join([_np(o, rng, p_size=0.4) for o in objs])
    n = _count(len(objs))
    return rng.choice((
        f"{n} shapes: {listed}",
        f"a picture of {listed}",
        f"there are {n} objects, {listed}",
        f"an image with {n} shapes, namely {listed}",
        f"{listed}",
    ))


def _lit_position(sc: dict, rng: random.Random) -> str:
    objs = rng.sample(sc["objects"], min(len(sc["objects"]), rng.choice((1, 2))))
    parts = []
    for o in objs:
        where = rng.choice(POSITION_WORDS[o["position"]])
        if rng.random() < 0.3:
            where += rng.choice((" of the image", " of the picture", " of the frame"))
        parts.append((where, _np(o, rng, p_size=0.6)))
    if len(parts) == 1:
        where, what = parts[0]
        return rng.choice((f"{what} {where}", f"{where} there is {what}", f"{where}, {what}"))
    (w1, a1), (w2, a2) = parts
    return rng.choice((f"{a1} {w1} and {a2} {w2}", f"{w1} {a1}, {w2} {a2}"))


def _lit_terse(sc: dict, rng: random.Random) -> str:
    names = [_np(o, rng, None, p_size=0.3, p_syn=0.2) for o in sc["objects"]]
    if len(names) == 2 and rng.random() < 0.3:
        text = f"{names[0]} with {names[1]}"
    else:
        text = ", ".join(names) if rng.random() < 0.5 else _join(names)
    if rng.random() < 0.3:
        text += f" on {sc['background']}"
    return text


def _lit_salient(sc: dict, rng: random.Random) -> str:
    o = max(sc["objects"], key=lambda ob: ob["salience"])
    what = _np(o, rng, p_size=0.9)
    others = len(sc["objects"]) - 1
    text = rng.choice((
        f"{what} stands out against the {sc['background']} background",
        f"the eye is drawn to {what}",
        f"mostly {what}",
        f"{what} catches the eye",
    ))
    if others and rng.random() < 0.6:
        text += f" among {_count(others)} other shape{'s' if others > 1 else ''}"
    return text


def _lit_counts(sc: dict, rng: random.Random) -> str:
    by_shape = Counter(o["shape"] for o in sc["objects"])
    parts = []
    for shape, k in by_shape.items():
        colours = {o["colour"] for o in sc["objects"] if o["shape"] == shape}
        colour = (rng.choice(COLOUR_WORDS[next(iter(colours))]) + " ") if len(colours) == 1 and rng.random() < 0.5 else ""
        word = rng.choice(SHAPE_WORDS[shape]) if rng.random() < 0.3 else shape
        parts.append(_article(colour + word) if k == 1 else f"{_count(k)} {colour}{_plural(word)}")
    rng.shuffle(parts)
    text = _join(parts)
    return rng.choice((text, f"{text} on a {sc['background']} background", f"a drawing of {text}",
                       f"{text} against a {sc['background']} backdrop"))


def _lit_topic(sc: dict, rng: random.Random) -> str:
    topic = TOPICS[sc["topic"]]
    rel = sc["relation"]
    if rel is not None and rng.random() < 0.5:
        a, b = sc["objects"][rel["subject"]], sc["objects"][rel["object"]]
        core = f"{_np(a, rng)} {rng.choice(RELATION_WORDS[rel['predicate']])} {_np(b, rng)}"
    else:
        core = _join([_np(o, rng, p_size=0.3) for o in sc["objects"]])
    return rng.choice((
        f"{rng.choice(topic.places)}: {core}",
        f"a {rng.choice(topic.nouns)} themed picture with {core}",
        f"{core}, {rng.choice(topic.places)}",
    ))


LITERAL_STYLES: tuple[Callable[[dict, random.Random], str], ...] = (
    _lit_relation, _lit_inventory, _lit_position, _lit_terse, _lit_salient, _lit_counts, _lit_topic,
)


def literal_captions(scene: dict, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct paraphrases that are all true of the drawn scene."""
    return _distinct(lambda style: style(scene, rng), LITERAL_STYLES, rng, n)


# =========================================================================== captions: complementary

def _story(scene: dict, rng: random.Random) -> dict:
    """What a 'news article' on this topic talks about. Independent of the drawn objects:
    only the topic is shared with the image."""
    t = TOPICS[scene["topic"]]
    return {
        "topic": t,
        "noun": rng.choice(t.nouns),
        "things": rng.sample(t.things, 3),
        "count": rng.choice((1, 1, 2, 3)),
        "mood": rng.choice(MOODS),
        "time": rng.choice(TIMES),
        "colour": rng.choice(t.colours),  # a topic-typical colour, not the drawn one
    }


def _thing(st: dict, k: int, colour: str = "") -> str:
    """'a barn' for the secondary things; the lead thing (k=0) carries the story's count,
    so every paraphrase agrees on it ('two cows')."""
    sing, plur = st["things"][k]
    adj = colour + " " if colour else ""
    if k == 0 and st["count"] > 1:
        return f"{_count(st['count'])} {adj}{plur}"
    return _article(adj + sing)


def _comp_styles() -> tuple[Callable[[dict, random.Random], str], ...]:
    def place(st, rng):
        return rng.choice(st["topic"].places)

    def waits(st):
        return "wait" if st["count"] > 1 else "waits"

    return (
        lambda st, rng: f"{_article(st['mood'] + ' ' + st['noun'])} with {_thing(st, 0)} and {_thing(st, 1)}",
        lambda st, rng: f"{_thing(st, 0)} near {_thing(st, 1)} {place(st, rng)} {st['time']}",
        lambda st, rng: f"news from the {st['noun']}: {_thing(st, 0, rng.choice(COLOUR_WORDS[st['colour']]))} and {_thing(st, 2)}",
        lambda st, rng: f"photo of {_thing(st, 1)} {place(st, rng)}, with {_thing(st, 0)} nearby",
        lambda st, rng: f"{place(st, rng)}, {_thing(st, 2)} sits beside {_thing(st, 1)}",
        lambda st, rng: f"everyday life {place(st, rng)}: {_join([p for _, p in st['things']])}",
        lambda st, rng: f"{_article(st['mood'])} day {place(st, rng)}, where {_thing(st, 0)} {waits(st)} by {_thing(st, 2)}",
        lambda st, rng: f"a story about {st['things'][1][1]} and {st['things'][0][1]} {place(st, rng)}",
        lambda st, rng: f"{st['time']} {place(st, rng)}: {_thing(st, 0)}, {_thing(st, 2)} and not much else",
    )


COMPLEMENTARY_STYLES = _comp_styles()


def complementary_captions(scene: dict, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct paraphrases of one topic 'story' that names things NOT drawn.

    Like a news photo and its article: the texts mention the topic and topic-typical
    things (tractors, kettles, ...), never the drawn shapes, so the only signal shared
    with the image is the topic.
    """
    st = _story(scene, rng)
    return _distinct(lambda style: style(st, rng), COMPLEMENTARY_STYLES, rng, n)


def _distinct(make: Callable, styles: Sequence[Callable], rng: random.Random, n: int) -> list[str]:
    """Cycle through shuffled styles until ``n`` distinct captions exist (repeats only if
    the scene's wording space is exhausted, which needs n far above 5)."""
    order = list(styles)
    rng.shuffle(order)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n and attempts < 40 * n + 40:
        text = _finish(make(order[attempts % len(order)]), rng)
        attempts += 1
        key = text.lower().rstrip(".")
        if key not in seen:
            seen.add(key)
            out.append(text)
    while len(out) < n:  # pragma: no cover - only for absurdly large n
        out.append(out[len(out) % max(1, len(out))])
    return out


# =========================================================================== world + dataset

class EmbeddedWorld(WorldSplits):
    """A generated world: arrays for all pairs plus train/val/test datasets.

    Attributes: ``images`` uint8 (N,H,W,3), ``captions`` list[list[str]],
    ``topics`` int64 (N,), ``topic_names``, ``saliency`` float32 (N,H,W),
    ``scenes`` list[dict], ``split_indices`` {"train","val","test"} -> int64 index
    arrays (sorted), ``pairing``, ``seed``, ``image_size``, ``n_captions``.
    """

    def __init__(self, *, images, captions, topics, saliency, scenes, split_indices,
                 pairing, seed, image_size, n_captions):
        self.images: np.ndarray = images
        self.captions: list[list[str]] = captions
        self.topics: np.ndarray = topics
        self.saliency: np.ndarray = saliency
        self.scenes: list[dict] = scenes
        self.split_indices: dict[str, np.ndarray] = split_indices
        self.pairing: str = pairing
        self.seed: int = seed
        self.image_size: int = image_size
        self.n_captions: int = n_captions
        self.topic_names: list[str] = list(TOPIC_NAMES)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.split_indices.items())
        return (f"EmbeddedWorld(n_pairs={len(self)}, seed={self.seed}, image_size={self.image_size}, "
                f"pairing={self.pairing!r}, n_captions={self.n_captions}, {sizes})")

    def _split_dataset(self, indices, transform, name) -> "EmbeddedWorldDataset":
        return EmbeddedWorldDataset(self, indices, transform=transform, name=name)

    def normalized_images(self, indices: Optional[np.ndarray] = None) -> torch.Tensor:
        """Images as float32 (n,3,H,W), scaled to [0,1] and normalised with open_clip's
        OpenAI mean/std (what the transform=None fast path serves)."""
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        imgs = self.images if indices is None else self.images[np.asarray(indices)]
        x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(OPENAI_DATASET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_DATASET_STD, dtype=torch.float32).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()


class EmbeddedWorldDataset(WorldSplitView, ImageTextDataset):
    """One split of an :class:`EmbeddedWorld` (``pair_id`` = index into the world).

    ``transform=None``: fast path, a precomputed normalised tensor indexed directly.
    With a transform: a PIL image is built and transformed; the saliency map is
    resized (bilinear, renormalised) to the transformed image's height and width.
    """

    def __init__(self, world: EmbeddedWorld, indices: Sequence[int], transform: Optional[Transform] = None,
                 name: str = "custom") -> None:
        super().__init__(transform)
        self._view(world, indices, name)
        self._saliency_maps = torch.from_numpy(np.ascontiguousarray(world.saliency[self.indices]))
        self._pixels = world.normalized_images(self.indices) if transform is None else None

    def __repr__(self) -> str:
        return (f"EmbeddedWorldDataset(split={self.name!r}, n={len(self)}, pairing={self.world.pairing!r}, "
                f"fast_path={self.transform is None})")

    def _image(self, i: int) -> torch.Tensor:
        if self._pixels is not None:
            return self._pixels[i]
        return self.transform(Image.fromarray(self.world.images[self.indices[i]]))

    def _saliency(self, i: int, image: torch.Tensor) -> torch.Tensor:
        sal = self._saliency_maps[i]
        hw = tuple(image.shape[-2:])
        if hw != tuple(sal.shape):
            sal = F.interpolate(sal[None, None], size=hw, mode="bilinear", align_corners=False)[0, 0]
            sal = sal.clamp_min(0)
            sal = sal / sal.sum()
        return sal


# =========================================================================== caption styles

#: pairing name → caption writer ``(scene, rng, n) -> list[str]``. A new caption style (another grammar, captions
#: naming only some attributes, …) is a writer registered with :func:`register_caption_style`, in its own module.
CAPTION_STYLES: dict[str, Callable[[dict, random.Random, int], list[str]]] = {
    "literal": literal_captions,
    "complementary": complementary_captions,
}


def register_caption_style(name: str, writer: Callable[[dict, random.Random, int], list[str]]) -> None:
    """Make ``make_world(pairing=name)`` write its captions with ``writer(scene, rng, n_captions)``.

    The writer sees the scene (topic, objects with shape/colour/size/position, relation, saliency flags) and an RNG
    of its own, derived from the world seed and the style's name, so images, scenes, topics and splits stay
    byte-identical across styles.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"caption style name must be an identifier, got {name!r}")
    if name in CAPTION_STYLES and CAPTION_STYLES[name] is not writer:
        raise ValueError(f"caption style {name!r} is already registered")
    CAPTION_STYLES[name] = writer


def _text_rng(pairing: str, seed: int, literal_ss, complementary_ss) -> random.Random:
    """The caption stream of a style: the original two keep their streams; others derive one from their name."""
    if pairing == "literal":
        ss = literal_ss
    elif pairing == "complementary":
        ss = complementary_ss
    else:
        ss = np.random.SeedSequence([seed, zlib.crc32(pairing.encode())])
    return random.Random(int(ss.generate_state(1, np.uint64)[0]))


# =========================================================================== make_world

def _validate(n_pairs, seed, image_size, pairing, n_captions, split_fractions) -> tuple[float, float, float]:
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(n_pairs) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive integer, got {n_pairs!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not is_int(image_size) or image_size < 16:
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
    if pairing not in CAPTION_STYLES:
        raise ValueError(f"pairing must be one of {tuple(CAPTION_STYLES)}, got {pairing!r}")
    if not is_int(n_captions) or n_captions < 1:
        raise ValueError(f"n_captions must be an integer >= 1, got {n_captions!r}")
    try:
        fr = tuple(float(f) for f in split_fractions)
    except (TypeError, ValueError):
        raise ValueError(f"split_fractions must be three numbers (train, val, test), got {split_fractions!r}") from None
    if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(
            f"split_fractions must be three non-negative numbers (train, val, test) summing to 1, got {split_fractions!r}")
    return fr  # type: ignore[return-value]


def _splits(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> dict[str, np.ndarray]:
    perm = rng.permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = min(n - n_train, int(round(fractions[1] * n)))
    parts = (perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:])
    return {name: np.sort(p).astype(np.int64) for name, p in zip(("train", "val", "test"), parts)}


def make_world(n_pairs: int = 2000, seed: int = 0, image_size: int = 32, pairing: str = "literal",
               n_captions: int = 5, split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
               clutter: int = 0) -> EmbeddedWorld:
    """Generate an embedded world.

    Args:
        n_pairs: number of image-text pairs (images).
        seed: everything (scenes, pixels, captions, splits) is fixed by it.
        image_size: side of the square RGB images in pixels (>= 16; 32 default, 64 works).
        pairing: "literal" (captions describe what is drawn), "complementary"
            (news-like texts about the same topic, naming things that are not drawn), or any
            style registered with :func:`register_caption_style`. All give identical images,
            scenes, topics, saliency and splits.
        n_captions: distinct captions per image.
        split_fractions: (train, val, test), summing to 1.
        clutter: distractor objects (0-4) drawn in the image corners, under the scene's objects, that no caption
            mentions and the saliency map ignores (seed 003's gaze study, :func:`add_clutter`). 0 (default) gives
            the world without clutter, byte-identical; the clutter has its own random stream, so everything else
            (objects, captions, saliency, splits) is the same with or without it.
    """
    fractions = _validate(n_pairs, seed, image_size, pairing, n_captions, split_fractions)
    if not isinstance(clutter, (int, np.integer)) or isinstance(clutter, bool) or not 0 <= clutter <= len(CORNERS):
        raise ValueError(f"clutter must be an integer in [0, {len(CORNERS)}] (distractors per image), got {clutter!r}")
    n_pairs, seed, image_size, n_captions = int(n_pairs), int(seed), int(image_size), int(n_captions)

    # independent streams: the text stream of one pairing never disturbs pixels or splits
    scene_ss, render_ss, literal_ss, complementary_ss, split_ss = np.random.SeedSequence(seed).spawn(5)
    scene_rng = random.Random(int(scene_ss.generate_state(1, np.uint64)[0]))
    scenes = [sample_scene(scene_rng, image_size) for _ in range(n_pairs)]
    if clutter:  # a sixth stream: the first five above are unchanged
        clutter_ss = np.random.SeedSequence(seed).spawn(6)[5]
        add_clutter(scenes, clutter, random.Random(int(clutter_ss.generate_state(1, np.uint64)[0])), image_size)
    images = render_images(scenes, image_size, np.random.default_rng(render_ss))
    saliency = saliency_maps(scenes, image_size)

    text_rng = _text_rng(pairing, seed, literal_ss, complementary_ss)
    write = CAPTION_STYLES[pairing]
    captions = [write(sc, text_rng, n_captions) for sc in scenes]

    world = EmbeddedWorld(
        images=images,
        captions=captions,
        topics=np.array([sc["topic"] for sc in scenes], dtype=np.int64),
        saliency=saliency,
        scenes=scenes,
        split_indices=_splits(n_pairs, fractions, np.random.default_rng(split_ss)),
        pairing=pairing,
        seed=seed,
        image_size=image_size,
        n_captions=n_captions,
    )
    world.clutter = int(clutter)
    return world
