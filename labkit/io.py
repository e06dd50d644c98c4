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

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint", "write_metrics", "read_metrics", "write_json",
           "append_jsonl", "read_jsonl", "new_run_dir", "provenance", "git_state", "package_versions", "device_record"]


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


# ------------------------------------------------------------------------------------------ runs that explain themselves

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "torchvision", "open_clip_torch", "numpy", "pandas", "scikit-learn", "papermill", "webdataset",
            "labkit")


def git_state(path: str | os.PathLike = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the git work tree holding ``path``; ``None`` values without git."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when it is not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_record(device: str = "auto") -> dict[str, Any]:
    """What ``device`` resolves to here, and the hardware behind it."""
    import platform

    record: dict[str, Any] = {"requested": str(device), "cpu_count": os.cpu_count(), "torch_threads":
                              torch.get_num_threads(), "platform": platform.platform(), "python":
                              platform.python_version()}
    try:
        from .train import resolve_device

        record["resolved"] = str(resolve_device(device))
    except ValueError as exc:  # e.g. cuda requested on a machine without it: recorded, not fatal here
        record["resolved"] = f"unavailable ({exc})"
    if torch.cuda.is_available():
        record["cuda"] = {"devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
                          "version": torch.version.cuda}
    return record


def provenance(parameters: Mapping[str, Any], seeds: Any, device: str = "auto") -> dict[str, Any]:
    """Everything needed to say what a run was: git commit, package versions, device, parameters, seeds, command."""
    import datetime as dt
    import sys

    return {"created": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "git": git_state(),
            "packages": package_versions(), "device": device_record(device), "parameters": dict(parameters),
            "seeds": seeds, "command": list(sys.argv)}


def new_run_dir(runs_dir: str | os.PathLike, name: str | None = None) -> Path:
    """Create and return a fresh run folder under ``runs_dir``; runs never overwrite each other.

    ``name=None``: a timestamp, with ``-2``, ``-3``, … appended if that folder exists (two runs in one second).
    An explicit ``name`` that already exists is an error naming the folder (pick another name, or remove it).
    """
    import datetime as dt

    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    if name is not None:
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"run name {name!r} must be a plain folder name")
        path = runs_dir / name
        try:
            path.mkdir()
        except FileExistsError:
            raise FileExistsError(f"run folder {path} already exists: runs never overwrite each other; choose "
                                  "another name (or delete that folder)") from None
        return path
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1, 10_000):
        path = runs_dir / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name for {stamp} under {runs_dir}")  # pragma: no cover


def append_jsonl(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Append one JSON record as a line (one ``write`` of a whole line, O_APPEND: concurrent writers never interleave
    within a line on a local POSIX file system)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(dict(record), default=str, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a JSON-lines file; a malformed line is an error naming the file and the line."""
    path = Path(path)
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not a JSON record: {exc}") from exc
    return out


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    return atomic_write(path, lambda f: f.write(text), mode="w")
