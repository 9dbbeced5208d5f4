"""Small helpers shared by the whole library: device choice, seeding, progress bars, fast mode.

Lesson: ``notebooks/00_introduction.ipynb`` (set-up cell).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "get_device",
    "seed_everything",
    "make_generator",
    "progress",
    "is_fast",
    "cache_dir",
]


def get_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA when a GPU is present, else the CPU.

    The same code then runs unchanged on a laptop and on a GPU machine.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu' or 'cuda'."
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but no CUDA GPU is available; use device='auto' or 'cpu'."
        )
    return resolved


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and torch so that CPU runs repeat exactly."""
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A torch generator living on ``device`` so that batch permutations never leave it."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def progress(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs):
    """A tqdm progress bar that renders as a widget in Jupyter and as text in a terminal."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled, leave=False, dynamic_ncols=True, **kwargs)


def is_fast() -> bool:
    """True when ``DCLIB_FAST=1``: notebooks and the CLI shrink epochs and data, not the code."""
    return os.environ.get("DCLIB_FAST", "0") == "1"


def cache_dir() -> Path:
    """Where pretrained autoencoders are cached (``DCLIB_CACHE`` or ``~/.cache/dclib``)."""
    path = Path(os.environ.get("DCLIB_CACHE", Path.home() / ".cache" / "dclib"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def timed_fit(model, X, device: str | torch.device | None = None) -> float:
    """Wall seconds of ``model.fit(X)``; on a GPU the device is synchronised on both sides.

    Why: CUDA kernels run asynchronously, so without the synchronisation a timer would stop while
    queued work is still running (or start while earlier work is). Used by ``dclib.compare`` and
    the benchmarks, so every reported second is measured the same way.
    """
    cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.fit(X)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start
