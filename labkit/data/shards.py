"""Image–text pairs streamed from webdataset tar shards — the format open_clip, img2dataset and CLAP train from.

A shard is a plain ``.tar`` whose members are grouped into samples by their name before the first dot::

    cc3m-000000.tar
      000000017.jpg     the image (jpg, jpeg, png or webp)
      000000017.txt     its caption (UTF-8; several captions: one per line)
      000000017.json    optional: {"captions": [...], "pair_id": 17, ...} (captions here win over .txt)
      000000018.jpg …

    shards = ShardDataset("data/cc3m-{000000..000331}.tar", transform=bundle.preprocess, shuffle=True, seed=0)
    fit(model, objective, shards, tokenizer, config)          # streamed, one process or many (torchrun)
    test = ShardDataset("data/val-000000.tar", transform=bundle.preprocess).materialize()   # map-style, for eval

Items are labkit's usual dicts (``image``, ``captions``, ``pair_id``, ``topic`` = -1, ``saliency`` = None,
``index`` = -1: a stream has no positions). ``pair_id`` is the JSON's ``pair_id`` (or ``id`` / ``image_id``), else
the key when it is a number, else a stable CRC-32 of the key.

Streaming, one epoch: the shard list is shuffled by ``(seed, epoch)`` (with ``shuffle=True``), dealt round-robin to
the processes of a torchrun job and then to the DataLoader workers of each; samples are shuffled within a buffer.
Every process yields exactly ``len(self)`` = ``n_items // world_size`` samples per epoch — cycling through its
shards when they hold fewer — because DistributedDataParallel hangs if one process runs out of batches before the
others (open_clip's ``with_epoch`` does the same). Reading is done by the ``webdataset`` package (brace
expansion, opening local files or ``pipe:`` commands, grouping tar members into samples); decoding is labkit's,
so that a corrupt image or a missing caption is an error naming the shard and the sample key.
"""

from __future__ import annotations

import io
import json
import random
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from .base import DataFormatError, ImageTextDataset, Transform, default_transform, missing_file

__all__ = ["ShardDataset", "MemoryPairs", "write_shards", "expand_shards", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def expand_shards(urls: str | Sequence[str]) -> list[str]:
    """``"a-{000..002}.tar"`` → three names; ``"a.tar,b.tar"`` or ``"a.tar::b.tar"`` or a list → each. Local files
    must exist (FileNotFoundError naming the first missing one); ``pipe:`` / URLs are passed through unchecked."""
    from webdataset.shardlists import expand_urls

    if isinstance(urls, (str, Path)):
        parts = [u for u in str(urls).replace(",", "::").split("::") if u]
        names = [n for part in parts for n in expand_urls(part)]
    else:
        names = [str(u) for u in urls]
    if not names:
        raise ValueError(f"no shards in {urls!r}")
    for name in names:
        if "://" not in name and not name.startswith("pipe:") and not Path(name).is_file():
            raise missing_file(name, "shard")
    return names


def _pair_id(key: str, meta: dict) -> int:
    for field in ("pair_id", "id", "image_id"):
        if isinstance(meta.get(field), int):
            return int(meta[field])
    base = key.rsplit("/", 1)[-1]
    return int(base) if base.isdigit() else zlib.crc32(key.encode()) & 0x7FFFFFFF


def _decode(sample: dict, transform: Transform) -> dict:
    """A raw webdataset sample (bytes by extension) → a labkit item; errors name the shard and the key."""
    where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')!r}"
    meta: dict = {}
    if "json" in sample:
        try:
            meta = json.loads(sample["json"])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"{where}: field 'json' is not valid JSON: {exc}") from exc
        if not isinstance(meta, dict):
            raise DataFormatError(f"{where}: field 'json' must be an object")
    if "captions" in meta:
        captions = meta["captions"]
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise DataFormatError(f"{where}: field 'json.captions' must be a list of strings")
        captions = [c.strip() for c in captions if c.strip()]
        if not captions:
            raise DataFormatError(f"{where}: field 'json.captions' is empty")
    elif "txt" in sample:
        try:
            text = sample["txt"].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{where}: field 'txt' is not UTF-8: {exc}") from exc
        captions = [line.strip() for line in text.splitlines() if line.strip()]
        if not captions:
            raise DataFormatError(f"{where}: field 'txt' is empty")
    else:
        raise DataFormatError(f"{where}: no caption (field 'txt', or 'captions' in 'json')")
    ext = next((e for e in IMAGE_EXTENSIONS if e in sample), None)
    if ext is None:
        raise DataFormatError(f"{where}: no image (fields {', '.join(IMAGE_EXTENSIONS)})")
    try:
        with Image.open(io.BytesIO(sample[ext])) as im:
            image = im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataFormatError(f"{where}: field {ext!r}: cannot decode image (truncated or corrupt?): {exc}") from exc
    return {"image": transform(image), "captions": captions, "pair_id": _pair_id(sample["__key__"], meta),
            "topic": -1, "saliency": None, "index": -1}


def _raw_samples(url: str) -> Iterator[dict]:
    """The samples of one shard, as webdataset groups them (a truncated tar is an error naming the shard)."""
    import tarfile

    from webdataset.tariterators import tarfile_samples

    if "://" not in url and not url.startswith("pipe:"):  # a local file: a cut-off copy lacks the end-of-archive
        with open(url, "rb") as f:  # marker (two zero blocks), which tarfile's stream mode does not notice
            size = f.seek(0, 2)
            f.seek(max(0, size - 1024))
            if size % 512 or size < 1024 or f.read(1024).strip(b"\0"):
                raise DataFormatError(f"{url}: cannot read the tar shard (truncated: {size} bytes, no end-of-archive "
                                      "marker)")
    try:
        yield from tarfile_samples([{"url": url}])
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataFormatError(f"{url}: cannot read the tar shard (truncated or not a tar?): {exc}") from exc


def _count_items(url: str) -> int:
    keys = set()
    for sample in _raw_samples(url):
        if any(e in sample for e in IMAGE_EXTENSIONS):
            keys.add(sample["__key__"])
    return len(keys)


class ShardDataset(IterableDataset):
    """A stream of image–text items from webdataset shards (see the module docstring).

    Args:
        urls: a brace pattern (``"cc3m-{000000..000331}.tar"``), a comma/``::`` list, or a list of shard names.
        transform: PIL image → tensor (default: ToTensor + OpenAI-CLIP Normalize at the native size).
        n_items: samples in all shards (the epoch's length); counted by reading the shards once when omitted.
        shuffle: shuffle the shard order per epoch and samples within ``buffer``.
        seed: the run's seed (the order depends on ``(seed, epoch)`` only).
        buffer: size of the within-shard shuffle buffer.
    """

    def __init__(self, urls: str | Sequence[str], transform: Optional[Transform] = None, n_items: int | None = None,
                 shuffle: bool = False, seed: int = 0, buffer: int = 1000):
        super().__init__()
        self.urls = expand_shards(urls)
        self.transform = transform if transform is not None else default_transform()
        if n_items is not None and (not isinstance(n_items, int) or n_items < 1):
            raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
        self.n_items = n_items if n_items is not None else sum(_count_items(u) for u in self.urls)
        if self.n_items < 1:
            raise DataFormatError(f"{self.urls[0]}{' …' if len(self.urls) > 1 else ''}: no image-text samples")
        self.shuffle, self.seed, self.buffer, self.epoch = bool(shuffle), int(seed), int(buffer), 0

    def __repr__(self) -> str:
        return f"ShardDataset(shards={len(self.urls)}, n_items={self.n_items}, shuffle={self.shuffle})"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _world(self) -> tuple[int, int]:
        from ..distributed import dist_info

        info = dist_info()
        return info.rank, info.world_size

    def __len__(self) -> int:
        """Samples this process yields per epoch (``n_items // world_size``)."""
        return self.n_items // self._world()[1]

    def __iter__(self) -> Iterator[dict]:
        rank, world = self._world()
        worker = get_worker_info()
        wid, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        rng = random.Random(f"{self.seed}/{self.epoch}")
        urls = list(self.urls)
        if self.shuffle:
            rng.shuffle(urls)
        mine = urls[rank::world] or urls[rank % len(urls)::len(urls)]  # fewer shards than processes: share them
        mine = mine[wid::workers] or mine[wid % len(mine)::len(mine)]
        quota = len(self) // workers + (1 if wid < len(self) % workers else 0)
        local = random.Random(f"{self.seed}/{self.epoch}/{rank}/{wid}")
        yield from self._stream(mine, quota, local)

    def _stream(self, urls: list[str], quota: int, rng: random.Random) -> Iterator[dict]:
        buffer: list[dict] = []
        produced, cycle = 0, 0
        while produced < quota:
            for url in urls:
                for sample in _raw_samples(url):
                    if not any(e in sample for e in IMAGE_EXTENSIONS) and "txt" not in sample and "json" not in sample:
                        continue  # a stray file (a README in the tar): not a sample
                    if not self.shuffle:
                        yield _decode(sample, self.transform)
                        produced += 1
                    else:
                        buffer.append(sample)
                        if len(buffer) < self.buffer:
                            continue
                        yield _decode(buffer.pop(rng.randrange(len(buffer))), self.transform)
                        produced += 1
                    if produced >= quota:
                        return
            while buffer and produced < quota:
                yield _decode(buffer.pop(rng.randrange(len(buffer))), self.transform)
                produced += 1
            cycle += 1
            if produced == 0 and cycle > 0:
                raise DataFormatError(f"{urls[0]}: no samples in this process's shards")

    def materialize(self, limit: int | None = None) -> "MemoryPairs":
        """Read the shards once (in order, this process) into a map-style dataset — for evaluation sets."""
        items = []
        for url in self.urls:
            for sample in _raw_samples(url):
                if any(e in sample for e in IMAGE_EXTENSIONS) or "txt" in sample or "json" in sample:
                    items.append(_decode(sample, self.transform))
                    if limit is not None and len(items) >= limit:
                        return MemoryPairs(items)
        return MemoryPairs(items)


class MemoryPairs(ImageTextDataset):
    """Decoded items held in memory (``ShardDataset.materialize``): map-style, with ``captions_flat``."""

    def __init__(self, items: Sequence[dict]):
        super().__init__(None)
        self._items = list(items)

    def __len__(self) -> int:
        return len(self._items)

    def captions_of(self, i: int) -> list[str]:
        return list(self._items[i]["captions"])

    def pair_id_of(self, i: int) -> int:
        return int(self._items[i]["pair_id"])

    def _image(self, i: int) -> torch.Tensor:
        return self._items[i]["image"]


def write_shards(dataset: Any, pattern: str, maxcount: int = 1000, image_format: str = "png",
                 to_image: Callable[[torch.Tensor], Image.Image] | None = None) -> list[str]:
    """Write a labkit dataset as webdataset shards (``pattern`` with one ``%06d``), ``maxcount`` samples each.

    Each sample is ``<pair_id>.<image_format>`` + ``<pair_id>.txt`` (captions, one per line) + ``<pair_id>.json``
    (``pair_id``, ``captions``, ``topic``). ``to_image`` turns an item's tensor back into a PIL image (default: the
    raw uint8 pixels of an :class:`~labkit.data.EmbeddedWorldDataset`, else a [0, 1] tensor). Returns the shard names.
    """
    from webdataset import ShardWriter

    Path(pattern).parent.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def image_of(i: int) -> Image.Image:
        world = getattr(dataset, "world", None)
        if to_image is None and world is not None:
            return Image.fromarray(world.images[dataset.indices[i]])
        tensor = dataset[i]["image"] if to_image is None else None
        if to_image is not None:
            return to_image(dataset[i]["image"])
        array = (tensor.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        return Image.fromarray(array)

    with ShardWriter(pattern, maxcount=maxcount, verbose=0) as sink:
        for i in range(len(dataset)):
            buf = io.BytesIO()
            image_of(i).save(buf, format="JPEG" if image_format in ("jpg", "jpeg") else image_format.upper())
            captions = list(dataset.captions_of(i))
            pid = int(dataset.pair_id_of(i))
            sink.write({"__key__": f"{pid:09d}", image_format: buf.getvalue(), "txt": "\n".join(captions),
                        "json": json.dumps({"pair_id": pid, "captions": captions,
                                            "topic": int(dataset.topic_of(i))})})
            if sink.fname not in written:
                written.append(sink.fname)
    return written
