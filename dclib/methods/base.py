"""The estimator base every method inherits: validation, device, seeding, save/load, warnings.

Lesson: ``notebooks/01_baselines_autoencoders.ipynb`` (the scikit-learn API of the course).
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin

from ..data import Dataset
from ..metrics import evaluate
from ..train import History
from ..utils import get_device, make_generator, seed_everything

__all__ = ["BaseClusterer", "DegenerateClusteringWarning", "as_tensor"]


class DegenerateClusteringWarning(UserWarning):
    """A fit ended with empty or near-empty clusters (a classic failure of deep clustering)."""


def as_tensor(X, name: str = "X") -> torch.Tensor:
    """Validate features and return them as a float32 tensor, with an error that says what to fix."""
    if isinstance(X, Dataset):
        X = X.X
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        try:
            arr = np.asarray(X)
        except Exception as err:  # pragma: no cover - exotic input
            raise ValueError(f"{name} must be an array or tensor of numbers.") from err
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}.")
        t = torch.as_tensor(arr)
    if t.dim() < 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features) or (n_samples, C, H, W); got shape "
            f"{tuple(t.shape)}. Reshape a single sample with X.reshape(1, -1)."
        )
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: pass at least one sample.")
    t = t.to(torch.float32)
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(dim=tuple(range(1, t.dim()))).sum())
        raise ValueError(
            f"{name} contains NaN or infinite values in {bad} samples; impute or drop them first."
        )
    return t


class BaseClusterer(ClusterMixin, BaseEstimator):
    """scikit-learn-style base: ``fit``, ``predict``, ``fit_predict``, ``labels_``, ``history_``.

    Subclasses implement ``_fit(X, y)`` (X a validated float32 tensor on ``self.device_``) and
    ``_predict(X)``; they store only their arguments in ``__init__``.
    """

    n_clusters: int
    random_state: int | None
    device: str

    # ------------------------------------------------------------------ validation
    def _check_params(self, n_samples: int) -> None:
        k = self.n_clusters
        if not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"n_clusters must be an integer >= 2, got {k!r}.")
        if k > n_samples:
            raise ValueError(
                f"n_clusters={k} is larger than the number of samples ({n_samples}); pass more "
                "data or ask for fewer clusters."
            )

    def _prepare(self, X, y=None) -> tuple[torch.Tensor, np.ndarray | None]:
        """Validate, seed, pick the device and move the data there once."""
        Xt = as_tensor(X)
        self._check_params(len(Xt))
        y_np = None
        if y is None and isinstance(X, Dataset):
            y = X.y
        if y is not None:
            y_np = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
            if y_np.ndim != 1 or len(y_np) != len(Xt):
                raise ValueError(
                    f"y must be one label per sample: got shape {y_np.shape} for {len(Xt)} samples."
                )
        self.device_ = get_device(getattr(self, "device", "auto"))
        seed_everything(self.random_state)
        self.n_features_in_ = math.prod(Xt.shape[1:])
        self.sample_shape_ = tuple(Xt.shape[1:])
        self.history_ = History()
        return Xt.to(self.device_), y_np

    def _check_X_predict(self, X) -> torch.Tensor:
        if not hasattr(self, "labels_"):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet; call fit(X) first.")
        Xt = as_tensor(X)
        if math.prod(Xt.shape[1:]) != self.n_features_in_:
            raise ValueError(
                f"X has {math.prod(Xt.shape[1:])} features per sample but the model was fitted on "
                f"{self.n_features_in_} (shape {self.sample_shape_})."
            )
        return Xt.reshape(len(Xt), *self.sample_shape_).to(self.device_)

    def _generator(self, offset: int = 0) -> torch.Generator:
        seed = None if self.random_state is None else int(self.random_state) + offset
        return make_generator(seed, self.device_)

    # ------------------------------------------------------------------ public API
    def fit(self, X, y=None):
        """Fit on ``X``; ``y`` (optional) is used only to log ACC/NMI in ``history_``."""
        Xt, y_np = self._prepare(X, y)
        self._fit(Xt, y_np)
        self._warn_if_degenerate()
        return self

    def predict(self, X) -> np.ndarray:
        """Cluster index of each sample, by the method's own assignment rule."""
        return self._predict(self._check_X_predict(X))

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X, y).labels_

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:  # pragma: no cover
        raise NotImplementedError

    def _predict(self, X: torch.Tensor) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _log_metrics(self, labels: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
        """ACC/NMI/ARI against y for the history (never used to train)."""
        return evaluate(y, labels) if y is not None else {}

    def _warn_if_degenerate(self, min_fraction: float = 0.1) -> None:
        counts = np.bincount(np.asarray(self.labels_), minlength=self.n_clusters)
        small = np.flatnonzero(counts < min_fraction * len(self.labels_) / self.n_clusters)
        if len(small):
            warnings.warn(
                f"{type(self).__name__}: clusters {small.tolist()} are empty or nearly empty "
                f"(sizes {counts[small].tolist()} of {len(self.labels_)} points). The solution may "
                "be degenerate; try another seed, more pretraining or a balanced loss.",
                DegenerateClusteringWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Save parameters and fitted state (modules included) to one file."""
        fitted = {k: v for k, v in self.__dict__.items() if k.endswith("_") and not k.startswith("_")}
        if "labels_" not in fitted:
            raise RuntimeError("Only a fitted model can be saved; call fit(X) first.")
        torch.save({"class": type(self).__name__, "params": self.get_params(), "fitted": fitted}, path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None):
        """Load a model saved with ``save``; ``device`` overrides where it lives (e.g. 'cpu')."""
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if saved.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {saved.get('class')} model, not a {cls.__name__}.")
        model = cls(**saved["params"])
        for key, value in saved["fitted"].items():
            setattr(model, key, value)
        target = get_device(device or model.device)
        model._to_device(target)
        return model

    def _to_device(self, device: torch.device) -> None:
        self.device_ = device
        for key, value in list(self.__dict__.items()):
            if isinstance(value, (torch.nn.Module, torch.Tensor)) and key.endswith("_"):
                setattr(self, key, value.to(device))


class AutoencoderClusterer(BaseClusterer):
    """Base for methods that start from a (pretrained) autoencoder: AE+k-means, DEC, IDEC, DCN...

    Expects the attributes ``autoencoder`` ("mlp", "conv" or a module), ``dims``, ``pretrain``
    ("end-to-end", "greedy" or None), ``pretrain_epochs``, ``batch_size``, ``pretrain_lr``,
    ``cache`` and ``verbose``; a method whose ``batch_size`` means something else (the embedding
    method's batch of pairs) pretrains at its ``pretrain_batch_size`` instead. A method with a
    ``pretrain_augment`` attribute (AE + k-means, DEC, IDEC, VaDE) pretrains on augmented images when
    it is set: ``True`` is DEC-DA's shifts and rotations (``dclib.augment.SHIFT_ROTATE``).
    """

    _pretrain_recon_loss = "mse"  # VaDE's Bernoulli decoder pretrains on "bce"

    def _pretrained_autoencoder(self, X: torch.Tensor):
        import copy

        from ..models import build_autoencoder
        from ..train import pretrain_autoencoder

        given = self.autoencoder
        ae = build_autoencoder(
            copy.deepcopy(given) if isinstance(given, torch.nn.Module) else given,
            tuple(X.shape[1:]),
            dims=self.dims,
        ).to(self.device_)
        # How long pretraining took here (0 when skipped, a load when cached); ``pretrain_from_cache_``
        # says whether the weights came from the disk cache, and ``pretrain_cost_seconds_`` what making
        # them cost (here, or in the fit that filled the cache), so a comparison can charge it.
        self.pretrain_from_cache_ = False
        self.pretrain_cost_seconds_: float | None = 0.0
        start = time.perf_counter()
        if self.pretrain is None:
            self.pretrain_history_ = History()
        else:
            self.pretrain_history_ = pretrain_autoencoder(
                ae, X, method=self.pretrain, epochs=self.pretrain_epochs,
                batch_size=self._pretrain_batch_size(), lr=self.pretrain_lr, recon_loss=self._pretrain_recon_loss,
                augment=self._pretrain_augment(), seed=self.random_state,
                generator=self._generator(), cache=self.cache, show_progress=self.verbose,
            )
            self.pretrain_from_cache_ = bool(getattr(self.pretrain_history_, "from_cache", False))
            self.pretrain_cost_seconds_ = getattr(self.pretrain_history_, "seconds", None)
        self.pretrain_seconds_ = time.perf_counter() - start
        # Re-seed after pretraining so a cached and a fresh pretraining give identical runs.
        if self.random_state is not None:
            seed_everything(int(self.random_state) + 1)
        return ae

    def _pretrain_augment(self):
        """The augmentation pretraining applies (``pretrain_augment`` where a method has one, else none)."""
        from ..augment import resolve_augment

        return resolve_augment(getattr(self, "pretrain_augment", None))

    def _pretrain_batch_size(self) -> int:
        """Pretraining's batch: ``pretrain_batch_size`` where a method has one, else its ``batch_size``."""
        size = getattr(self, "pretrain_batch_size", None)
        return int(self.batch_size if size is None else size)

    def transform(self, X) -> np.ndarray:
        """The embedding z = f(x) of each sample."""
        from ..train import embed

        Xt = self._check_X_predict(X)
        self.autoencoder_.eval()
        return embed(self.autoencoder_.encode, Xt).cpu().numpy()
