"""Bad inputs across labkit, one parametrised table: each case must fail with a clear error naming the file, the field
or the parameter (or take its documented fallback). Cases already tested elsewhere are not repeated here — the
README notes (issue 12) list both sets. Fixture files are written in the real formats with the writers of
tests/test_real_loaders.py and labkit.data.shards.write_shards.
"""

import io
import json
import tarfile

import nbformat
import numpy as np
import pytest
import torch

from labkit.data import CocoCaptions, DataFormatError, coco_karpathy, make_world
from labkit.data.shards import ShardDataset
from labkit.evaluate import mean_pairwise_cosine
from labkit.io import load_checkpoint, new_run_dir, read_jsonl, save_checkpoint, write_metrics
from labkit.metrics import modality_gap, nway_recall, retrieval_recall
from labkit.models import create_model, embed_dim_of
from labkit.runner import main as runner_main
from labkit.runner import parse_overrides
from test_real_loaders import _coco_json, _dump, _karpathy_coco, _truncate, _write_image

# ============================================================================ fixture builders (real formats)


def coco(tmp_path, mutate=None, image_bytes=None):
    """A COCO captions folder (tests/test_real_loaders.py's fixture), optionally with an edited annotation file or
    the bytes of image 9 replaced."""
    root = tmp_path / "coco"
    for name, colour in [("000000000009.jpg", (200, 30, 30)), ("000000000025.png", (30, 200, 30))]:
        _write_image(root / "val2017" / name, colour)
    if image_bytes is not None:
        (root / "val2017" / "000000000009.jpg").write_bytes(image_bytes)
    data = _coco_json()
    data["images"] = data["images"][:2]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in (9, 25)]
    if mutate is not None:
        data = mutate(data) or data
    (root / "annotations").mkdir(parents=True)
    ann = _dump(root / "annotations" / "captions_val2017.json", data)
    return root / "val2017", ann


def karpathy(tmp_path, mutate=None):
    root = tmp_path / "coco2014"
    data = _karpathy_coco()
    for img in data["images"]:
        _write_image(root / img["filepath"] / img["filename"], (10, 100, 100))
    if mutate is not None:
        mutate(data)
    _dump(root / "dataset_coco.json", data)
    return root


def shard(tmp_path, samples, name="bad-000000.tar"):
    """A webdataset shard holding ``samples``: {key: {extension: bytes}}."""
    path = tmp_path / name
    with tarfile.open(path, "w") as tar:
        for key, files in samples.items():
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def png(colour=(10, 20, 30)):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def notebook(path, params_src, body_src, tag=True):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_src)
    if tag:
        params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body_src)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def unit(n, d=4, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ============================================================================ the cases

CASES = {}


def case(name, error, match):
    def register(fn):
        CASES[name] = (fn, error, match)
        return fn
    return register


# ---------------------------------------------------------------- loaders: COCO captions


@case("coco/empty caption", DataFormatError, r"captions_val2017\.json: annotation 1 has an empty or non-string 'caption'")
def _(tmp):
    CocoCaptions(*coco(tmp, lambda d: d["annotations"][1].update(caption="   ")))


@case("coco/caption not a string", DataFormatError, r"captions_val2017\.json: annotation 0 has an empty or non-string")
def _(tmp):
    CocoCaptions(*coco(tmp, lambda d: d["annotations"][0].update(caption=["a", "list"])))


@case("coco/top level not an object", DataFormatError, r"captions_val2017\.json: top level must be a JSON object")
def _(tmp):
    CocoCaptions(*coco(tmp, lambda d: [d]))


@case("coco/repeated image id", DataFormatError, r"captions_val2017\.json: image 1 repeats id 9")
def _(tmp):
    CocoCaptions(*coco(tmp, lambda d: d["images"][1].update(id=9)))


@case("coco/image file is not an image", DataFormatError, r"000000000009\.jpg: cannot decode image")
def _(tmp):
    CocoCaptions(*coco(tmp, image_bytes=b"this is a text file, not a JPEG"))[0]


@case("coco/zero-byte image", DataFormatError, r"000000000009\.jpg: cannot decode image")
def _(tmp):
    CocoCaptions(*coco(tmp, image_bytes=b""))[0]


# ---------------------------------------------------------------- loaders: Karpathy splits (COCO / Flickr)


@case("karpathy/sentences not a list", DataFormatError, r"dataset_coco\.json: image 0 field 'sentences' must be a list")
def _(tmp):
    coco_karpathy(karpathy(tmp, lambda d: d["images"][0].update(sentences="A man.")), "test")


@case("karpathy/no image id", DataFormatError, r"dataset_coco\.json: image 2 has no field 'imgid' \(nor 'cocoid'\)")
def _(tmp):
    coco_karpathy(karpathy(tmp, lambda d: [d["images"][2].pop(k) for k in ("imgid", "cocoid")]), "test")


@case("karpathy/caption not a string", DataFormatError, r"dataset_coco\.json: image 4 sentence 2 field 'raw' is not a")
def _(tmp):
    coco_karpathy(karpathy(tmp, lambda d: d["images"][4]["sentences"][2].update(raw=None)), "test")


@case("karpathy/no images field", DataFormatError, r"dataset_coco\.json: missing top-level field 'images'")
def _(tmp):
    coco_karpathy(karpathy(tmp, lambda d: d.update(images=None) or d.pop("images")), "test")


@case("karpathy/image id with no file (check_files)", FileNotFoundError, r"COCO_val2014_000000391895\.jpg")
def _(tmp):
    root = karpathy(tmp)
    (root / "val2014" / "COCO_val2014_000000391895.jpg").unlink()
    coco_karpathy(root, "test", check_files=True)


@case("karpathy/empty caption list: skipped, counted (documented fallback)", None, None)
def _(tmp):
    ds = coco_karpathy(karpathy(tmp, lambda d: d["images"][0].update(sentences=[])), "test")
    assert len(ds) == 1 and ds.n_skipped == 1 and ds.pair_ids.tolist() == [554625]


# ---------------------------------------------------------------- loaders: webdataset shards


@case("shards/missing shard file", FileNotFoundError, r"shard not found.*nowhere-000001\.tar")
def _(tmp):
    shard(tmp, {"1": {"png": png(), "txt": b"a caption"}}, "nowhere-000000.tar")
    ShardDataset(str(tmp / "nowhere-{000000..000001}.tar"))


@case("shards/truncated tar", DataFormatError, r"cut-000000\.tar: cannot read the tar shard")
def _(tmp):
    path = shard(tmp, {str(k): {"png": png(), "txt": b"a caption " * 50} for k in range(4)}, "cut-000000.tar")
    _truncate(path)
    list(ShardDataset(str(path), n_items=4))


@case("shards/sample without caption", DataFormatError, r"bad-000000\.tar: sample '7': no caption \(field 'txt'")
def _(tmp):
    list(ShardDataset(str(shard(tmp, {"6": {"png": png(), "txt": b"ok"}, "7": {"png": png()}}))))


@case("shards/empty caption", DataFormatError, r"bad-000000\.tar: sample '3': field 'txt' is empty")
def _(tmp):
    list(ShardDataset(str(shard(tmp, {"3": {"png": png(), "txt": b"  \n "}}))))


@case("shards/corrupt image", DataFormatError, r"bad-000000\.tar: sample '5': field 'jpg': cannot decode image")
def _(tmp):
    list(ShardDataset(str(shard(tmp, {"5": {"jpg": b"\xff\xd8 not really a jpeg", "txt": b"a caption"}}))))


@case("shards/json not valid", DataFormatError, r"sample '2': field 'json' is not valid JSON")
def _(tmp):
    list(ShardDataset(str(shard(tmp, {"2": {"png": png(), "json": b"{captions: oops"}}))))


@case("shards/empty caption list in json", DataFormatError, r"sample '2': field 'json.captions' is empty")
def _(tmp):
    list(ShardDataset(str(shard(tmp, {"2": {"png": png(), "json": json.dumps({"captions": []}).encode()}}))))


@case("shards/caption without image", DataFormatError, r"sample '9': no image \(fields jpg, jpeg, png, webp\)")
def _(tmp):
    list(ShardDataset(str(shard(tmp, {"9": {"txt": b"a caption without its picture"}})), n_items=1))


@case("shards/n_items not positive", ValueError, r"n_items must be a positive integer, got 0")
def _(tmp):
    ShardDataset(str(shard(tmp, {"1": {"png": png(), "txt": b"x"}})), n_items=0)


# ---------------------------------------------------------------- metrics


@case("metrics/one row where pairs of rows are needed", ValueError, r"x must be \(n >= 2, d\)")
def _(tmp):
    mean_pairwise_cosine(unit(1))


@case("metrics/n-way retrieval with fewer pairs than ways", ValueError, r"n_way must be in \[2, 3\]")
def _(tmp):
    nway_recall(unit(3), unit(3, seed=1), n_way=5)


@case("metrics/neighbourhoods of rows that do not pair up", ValueError, r"omega and learned must be row-aligned; got 5 and 4")
def _(tmp):
    from labkit.metrics import neighbourhood_preservation

    neighbourhood_preservation(unit(5), unit(4), k=2)


@case("metrics/non-normalised input: rows are L2-normalised first (documented fallback)", None, None)
def _(tmp):
    a, b = unit(6), unit(6, seed=1)
    scale = np.arange(1, 7)[:, None]
    assert modality_gap(a * scale, b / scale) == pytest.approx(modality_gap(a, b), rel=1e-12)
    assert retrieval_recall(a * scale, b * 7, np.arange(6)) == retrieval_recall(a, b, np.arange(6))


@case("losses/shape mismatch in the CLIP loss", ValueError, r"image_emb and text_emb must both be \(N, D\)")
def _(tmp):
    from labkit.losses import clip_loss

    clip_loss(torch.zeros(4, 8), torch.zeros(3, 8), 10.0)


# ---------------------------------------------------------------- models and checkpoints


@case("models/pickled non-tensor checkpoint refused (weights_only)", ValueError, r"evil\.pt")
def _(tmp):
    import argparse

    torch.save({"state_dict": {"w": argparse.Namespace(code="runs at load time")}}, tmp / "evil.pt")
    create_model("labkit-tiny", checkpoint=tmp / "evil.pt")


@case("models/checkpoint file of random bytes", ValueError, r"noise\.pt")
def _(tmp):
    (tmp / "noise.pt").write_bytes(bytes(range(256)) * 4)
    create_model("labkit-tiny", checkpoint=tmp / "noise.pt")


@case("models/embed_dim of an unknown config", ValueError, r"model 'labkit-huge'")
def _(tmp):
    embed_dim_of("labkit-huge")


@case("io/truncated checkpoint", ValueError, r"cannot read checkpoint .*last\.pt")
def _(tmp):
    save_checkpoint(tmp / "last.pt", {"state_dict": {"w": torch.randn(64, 64)}, "epoch": 1})
    _truncate(tmp / "last.pt")
    load_checkpoint(tmp / "last.pt")


@case("io/a failed checkpoint write leaves the previous checkpoint intact", OSError, r"disk full")
def _(tmp):
    save_checkpoint(tmp / "last.pt", {"epoch": 1, "state_dict": {"w": torch.ones(3)}})

    class Failing(dict):
        def __reduce_ex__(self, protocol):  # torch.save has begun writing when this runs
            raise OSError("disk full")

    try:
        save_checkpoint(tmp / "last.pt", {"epoch": 2, "state_dict": Failing(w=torch.zeros(3))})
    finally:
        assert load_checkpoint(tmp / "last.pt")["epoch"] == 1
        assert [p.name for p in tmp.iterdir()] == ["last.pt"]  # no temporary file left behind


@case("io/metrics key not a string", ValueError, r"metrics: key 3 is not a string")
def _(tmp):
    write_metrics(tmp, {3: 1.0})


@case("io/results.jsonl with a malformed line", ValueError, r"results\.jsonl:2: not a JSON record")
def _(tmp):
    (tmp / "results.jsonl").write_text('{"a": 1}\n{"a": \n')
    read_jsonl(tmp / "results.jsonl")


@case("io/run name that is a path", ValueError, r"run name '\.\./elsewhere' must be a plain folder name")
def _(tmp):
    new_run_dir(tmp, "../elsewhere")


# ---------------------------------------------------------------- training


@case("train/resume from a corrupt checkpoint", ValueError, r"cannot read checkpoint .*ckpt[/\\]last\.pt")
def _(tmp):
    from labkit.losses import Objective
    from labkit.train import TrainConfig, fit

    (tmp / "ckpt").mkdir()
    (tmp / "ckpt" / "last.pt").write_bytes(b"PK\x03\x04 half a zip")
    b = create_model("labkit-tiny", seed=0)
    world = make_world(n_pairs=40, seed=0)
    fit(b.model, Objective(), world.train, b.tokenizer,
        TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False, checkpoint_dir=str(tmp / "ckpt")),
        resume=True)


@case("train/global batch not divisible by the processes", ValueError, r"batch_size \(the global batch\) must be")
def _(tmp):
    from labkit.train import EpochSampler

    EpochSampler(list(range(10)), batch_size=5, num_replicas=2)


@case("train_cli/--resume without a checkpoint", SystemExit, r"--resume: no checkpoint at .*checkpoints[/\\]last\.pt")
def _(tmp):
    from labkit.studies.train_cli import main

    main(["--output-dir", str(tmp / "fresh"), "--resume", "--profile", "tiny"])


# ---------------------------------------------------------------- runner


@case("runner/bad literal", SystemExit, r"parameter lambdas: '\[0, 0\.5' is not a valid Python literal")
def _(tmp):
    parse_overrides(["seed=1", "lambdas=[0, 0.5"])


@case("runner/no notebook matches --only", SystemExit, r"--only 99: no notebook in .*nbs matches")
def _(tmp):
    notebook(tmp / "nbs" / "01_a.ipynb", "seed = 0\noutput_dir = '.'", "pass")
    runner_main(["--notebooks-dir", str(tmp / "nbs"), "--runs-dir", str(tmp / "runs"), "--only", "99"])


@case("runner/missing notebooks folder", SystemExit, r"no notebooks found in .*missing")
def _(tmp):
    runner_main(["--notebooks-dir", str(tmp / "missing"), "--runs-dir", str(tmp / "runs")])


@case("runner/notebook without a parameters cell", SystemExit, r"01_a\.ipynb: no papermill 'parameters' cell")
def _(tmp):
    notebook(tmp / "nbs" / "01_a.ipynb", "seed = 0\noutput_dir = '.'", "pass", tag=False)
    runner_main(["--notebooks-dir", str(tmp / "nbs"), "--runs-dir", str(tmp / "runs")])


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path):
    fn, error, match = CASES[name]
    if error is None:  # a documented fallback: the case asserts it itself
        fn(tmp_path)
        return
    with pytest.raises(error, match=match):
        fn(tmp_path)


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25
