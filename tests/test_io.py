"""labkit.io: atomic writes leave nothing half-written; metrics.json is flat name -> finite number."""

import argparse
import json

import pytest
import torch

from labkit.io import atomic_write, load_checkpoint, read_metrics, save_checkpoint, write_metrics


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def broken(f):
        f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, broken, mode="w")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    state = {"state_dict": {"w": torch.arange(3.0)}, "epoch": 2, "history": [{"loss": 1.5}]}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(back["state_dict"]["w"], state["state_dict"]["w"]) and back["history"] == state["history"]


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    torch.save({"x": argparse.Namespace(code="not a tensor")}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_write_metrics_flat_and_finite(tmp_path):
    write_metrics(tmp_path, {"gap": 0.5, "i2t_R@1": torch.tensor(12.5), "n": 3})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"gap": 0.5, "i2t_R@1": 12.5, "n": 3}
    assert read_metrics(tmp_path / "metrics.json")["gap"] == 0.5
    with pytest.raises(ValueError, match="'bad'.*not finite"):
        write_metrics(tmp_path, {"bad": float("nan")})
    with pytest.raises(ValueError, match="'nested'.*not a number"):
        write_metrics(tmp_path, {"nested": {"a": 1}})
