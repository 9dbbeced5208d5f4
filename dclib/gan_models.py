"""What InfoGAN and CatGAN share: small DCGAN networks, the alternating D/G loop, and the estimator
base with ``sample`` and the mode-collapse check.

Lesson: ``notebooks/10_adversarial_clustering.ipynb``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .data import minibatches
from .methods.base import BaseClusterer, DegenerateClusteringWarning
from .train import History, _accumulate, _eager_step, _epoch_means, embed
from .utils import progress

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "train_adversarial", "AdversarialClusterer", "image_shape_of"]

StepFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def image_shape_of(X: torch.Tensor) -> tuple[int, int, int]:
    """(C, H, W) of a batch of images, or of square flat images (n, H·W), with H and W multiples of 4.

    The generator doubles its resolution twice from an (H/4, W/4) map, hence the multiple of 4.
    """
    if X.dim() == 4:
        shape = tuple(int(s) for s in X.shape[1:])
    elif X.dim() == 2 and math.isqrt(X.shape[1]) ** 2 == X.shape[1]:
        side = math.isqrt(X.shape[1])
        shape = (1, side, side)
    else:
        raise ValueError(
            f"X must be images (n, C, H, W) or square flat images (n, H*W); got shape {tuple(X.shape)}."
        )
    if shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"image height and width must be multiples of 4 (e.g. 28x28 or 8x8), got {shape[1:]}.")
    return shape  # type: ignore[return-value]


class DCGANGenerator(nn.Module):
    """z → Linear → (2w, H/4, W/4) → ConvT(2w→w, ×2) → ConvT(w→C, ×2) → sigmoid, in [0, 1].

    The DCGAN recipe (Radford et al., 2016) at a size a 2-core CPU trains in minutes: batch norm
    and ReLU in the generator, transposed 4×4 convolutions with stride 2. ``hidden > 0`` inserts the
    InfoGAN paper's fully connected layer (Linear → BN → ReLU) first; 0 keeps the course's net.
    """

    def __init__(self, in_features: int, image_shape: tuple[int, int, int], width: int = 32, hidden: int = 0):
        super().__init__()
        c, h, w = image_shape
        self.start = (2 * width, h // 4, w // 4)
        # hidden > 0: the InfoGAN paper's extra fully connected layer (FC 1024 BN ReLU) before the map
        first = ([nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()] if hidden else [])
        self.fc = nn.Sequential(
            *first, nn.Linear(hidden or in_features, math.prod(self.start)), nn.BatchNorm1d(math.prod(self.start)),
            nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).reshape(len(z), *self.start))


class DCGANDiscriminator(nn.Module):
    """x → Conv(C→w, /2) → Conv(w→2w, /2) → Linear(hidden) → one linear head per output size.

    Leaky ReLU throughout; spectral normalisation of the body's layers (Miyato et al., 2018) bounds
    its Lipschitz constant, which keeps the discriminator from overpowering the generator and is the
    main stabiliser of the course's defaults. ``heads`` maps names to output sizes (InfoGAN: a
    real/fake logit and Q's outputs; CatGAN: K class logits); they share the body. The InfoGAN
    paper's variants, off by default: ``batch_norm`` (after the second convolution and the hidden
    layer) and ``head_hidden`` (a hidden layer of its own for the named heads).
    """

    def __init__(
        self, image_shape: tuple[int, int, int], heads: dict[str, int], width: int = 32, hidden: int = 256,
        spectral_norm: bool = True, batch_norm: bool = False, head_hidden: dict[str, int] | None = None,
    ):
        super().__init__()
        c, h, w = image_shape
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)

        def bn(kind: type[nn.Module], size: int) -> list[nn.Module]:
            return [kind(size)] if batch_norm else []  # the InfoGAN paper's D: batch norm after layers 2 and 3

        self.body = nn.Sequential(
            sn(nn.Conv2d(c, width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), *bn(nn.BatchNorm2d, 2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(), sn(nn.Linear(2 * width * (h // 4) * (w // 4), hidden)), *bn(nn.BatchNorm1d, hidden),
            nn.LeakyReLU(0.2),
        )
        # the heads stay unnormalised: a 1-Lipschitz head caps the logits, so Q(c|x) or p(y|x) could
        # never become confident (the information term would stay near 0). ``head_hidden`` gives a head
        # its own hidden layer (the InfoGAN paper's Q: FC 128 [BN] lReLU → FC).
        head_hidden = head_hidden or {}
        self.heads = nn.ModuleDict({
            name: (nn.Sequential(nn.Linear(hidden, head_hidden[name]), *bn(nn.BatchNorm1d, head_hidden[name]),
                                 nn.LeakyReLU(0.2), nn.Linear(head_hidden[name], size))
                   if head_hidden.get(name) else nn.Linear(hidden, size))
            for name, size in heads.items()
        })

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.body(x)
        return {name: head(features) for name, head in self.heads.items()}


def train_adversarial(
    d_step: StepFn,
    g_step: StepFn,
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
    n_samples: int,
    *,
    epochs: int,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    after_epoch: Callable[[int, dict[str, float]], bool] | None = None,
    desc: str = "GAN",
    show_progress: bool = True,
    history: History | None = None,
    g_steps: int = 1,
) -> History:
    """The GAN loop: for each batch of real indices, one discriminator step, then ``g_steps`` generator steps.

    Each step function returns ``{"loss": ..., other terms}``; the two losses are logged as
    ``d_loss`` and ``g_loss``, the other terms under their own names. Same batching, device-side
    sums and NaN check as ``dclib.train.train`` (whose one-step helpers it reuses); the last batch
    of an epoch is dropped when it has a single sample (batch norm needs two).
    """
    history = History() if history is None else history
    bar = progress(range(epochs), enabled=show_progress, desc=desc)
    iteration = 0
    for epoch in bar:
        totals: dict[str, torch.Tensor] = {}
        seen = 0
        for idx in minibatches(n_samples, batch_size, generator=generator, device=device,
                               drop_last=n_samples % batch_size == 1):
            d_terms = _eager_step(d_step, d_optimizer, idx)
            for _ in range(g_steps):  # the logged terms are the last generator step's
                g_terms = _eager_step(g_step, g_optimizer, idx)
            terms = {("d_loss" if k == "loss" else k): v for k, v in d_terms.items()}
            terms.update({("g_loss" if k == "loss" else k): v for k, v in g_terms.items()})
            _accumulate(totals, terms, len(idx))
            seen += len(idx)
            iteration += 1
        means = _epoch_means(totals, seen, desc, epoch)
        history.log(epoch=epoch, iteration=iteration, **means)
        bar.set_postfix(d=f"{means['d_loss']:.3f}", g=f"{means['g_loss']:.3f}")
        if after_epoch is not None and after_epoch(epoch, means):
            break
    bar.close()
    return history


class AdversarialClusterer(BaseClusterer):
    """Base of InfoGAN and CatGAN: image handling, ``predict_proba``, ``sample`` and the collapse check.

    Subclasses set ``generator_`` and ``discriminator_`` and implement ``_logits(x)`` (cluster
    logits of images) and ``_generate(n, cluster, gen)`` (images and the clusters they were asked
    to be, or None).
    """

    #: fraction of the uniform share (1/K) under which a cluster counts as unused
    collapse_fraction = 0.1

    def _check_common(self, X: torch.Tensor) -> None:
        for name in ("epochs", "batch_size", "noise_dim"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < (2 if name == "batch_size" else 1):
                raise ValueError(f"{name} must be a positive integer (batch_size >= 2), got {value!r}.")
        lo, hi = float(X.min()), float(X.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(
                f"GAN clustering expects pixel intensities in [0, 1] (the generator ends with a sigmoid); "
                f"got values in [{lo:.3g}, {hi:.3g}]. Rescale, e.g. X / 255."
            )
        self.image_shape_ = image_shape_of(X)

    def _images(self, X: torch.Tensor) -> torch.Tensor:
        return X.reshape(len(X), *self.image_shape_)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _generate(self, n: int, cluster: int | None, gen: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def _probs(self, X: torch.Tensor) -> torch.Tensor:
        self.discriminator_.eval()
        out = embed(lambda x: torch.softmax(self._logits(x), dim=1), self._images(X))
        self.discriminator_.train()
        return out

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return self._probs(X).argmax(1).cpu().numpy().astype(np.int64)

    def predict_proba(self, X) -> np.ndarray:
        """The cluster posterior of each real image (InfoGAN's Q(c|x), CatGAN's p(y|x))."""
        return self._probs(self._check_X_predict(X)).cpu().numpy()

    def _log_epoch(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        if y is not None:
            for key, value in self._log_metrics(self._predict(X), y).items():
                self.history_.setdefault(key, []).append(value)

    def _train(self, d_step, g_step, d_opt, g_opt, X: torch.Tensor, y: np.ndarray | None,
               gen: torch.Generator, g_steps: int = 1) -> None:
        """The fit both GANs share: alternate D and G steps, log ACC/NMI/ARI per epoch, label X."""

        def after_epoch(epoch: int, means: dict[str, float]) -> bool:
            self._log_epoch(X, y)
            return False

        self.generator_.train()
        self.discriminator_.train()
        self.history_.update(train_adversarial(
            d_step, g_step, d_opt, g_opt, len(X), epochs=int(self.epochs), batch_size=int(self.batch_size),
            device=self.device_, generator=gen, after_epoch=after_epoch, desc=type(self).__name__,
            show_progress=self.verbose, g_steps=g_steps,
        ))
        self.labels_ = self._predict(X)

    @torch.no_grad()
    def sample(self, n: int, cluster: int | None = None, random_state: int | None = None) -> np.ndarray:
        """``n`` generated images (n, C, H, W) in [0, 1], all of cluster ``cluster`` if given."""
        if not hasattr(self, "generator_"):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet; call fit(X) first.")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}.")
        if cluster is not None and not (isinstance(cluster, (int, np.integer)) and 0 <= cluster < self.n_clusters):
            raise ValueError(f"cluster must be an integer in [0, {self.n_clusters - 1}] or None, got {cluster!r}.")
        seed = None if random_state is None else int(random_state)
        gen = torch.Generator(device=self.device_)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(seed)
        self.generator_.eval()
        self.discriminator_.eval()
        try:
            images = self._generate(int(n), None if cluster is None else int(cluster), gen)
        finally:
            self.generator_.train()
            self.discriminator_.train()
        return images.cpu().numpy()

    @torch.no_grad()
    def generated_cluster_sizes(self, n: int = 2000, random_state: int = 0) -> np.ndarray:
        """How many of ``n`` generated images the clustering head puts in each cluster."""
        images = torch.as_tensor(self.sample(n, random_state=random_state), device=self.device_)
        return np.bincount(self._predict(images), minlength=self.n_clusters)

    def _warn_if_degenerate(self, min_fraction: float | None = None) -> None:
        """Warn on mode collapse: a cluster (almost) unused by ``predict`` or by the generator."""
        fraction = self.collapse_fraction if min_fraction is None else min_fraction
        super()._warn_if_degenerate(fraction)
        self.generated_cluster_sizes_ = self.generated_cluster_sizes()
        counts = self.generated_cluster_sizes_
        small = np.flatnonzero(counts < fraction * counts.sum() / self.n_clusters)
        if len(small):
            warnings.warn(
                f"{type(self).__name__}: mode collapse — the generator (almost) never produces clusters "
                f"{small.tolist()} (sizes {counts[small].tolist()} of {int(counts.sum())} samples, as "
                "classified by the model). Try another seed, more epochs or a lower discriminator learning rate.",
                DegenerateClusteringWarning,
                stacklevel=3,
            )
