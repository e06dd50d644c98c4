"""Atomic writes, checkpoints and metrics files.

Nothing labkit writes is ever left half-written: each file is written to a temporary sibling and moved into
place with ``os.replace`` (atomic on POSIX and Windows). Checkpoints are read back with
``torch.load(..., weights_only=True)``, so they hold only tensors and plain Python containers.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint", "write_metrics", "read_metrics"]


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Atomically ``torch.save`` a checkpoint dict (model weights under ``state_dict``, as open_clip expects)."""
    return atomic_write(path, lambda f: torch.save(dict(state), f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no arbitrary code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc


def write_metrics(output_dir: str | os.PathLike, metrics: Mapping[str, Any], name: str = "metrics.json") -> Path:
    """Write a flat ``{name: number}`` mapping as JSON, atomically. Non-numbers and non-finite values are errors."""
    clean: dict[str, float | int] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise ValueError(f"metrics: key {key!r} is not a string")
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"metrics[{key!r}] = {value!r} is not a number (metrics.json is flat name -> number)")
        if not math.isfinite(value):
            raise ValueError(f"metrics[{key!r}] = {value} is not finite")
        clean[key] = value
    text = json.dumps(clean, indent=2, sort_keys=True) + "\n"
    return atomic_write(Path(output_dir) / name, lambda f: f.write(text), mode="w")


def read_metrics(path: str | os.PathLike) -> dict[str, float]:
    """Read a metrics.json written by :func:`write_metrics`."""
    path = Path(path)
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of name -> number")
    return data
