"""DBC: DEC on the embedding of a convolutional autoencoder, for images.

Discriminatively Boosted Clustering (Li, Qiao & Zhang, 2018, "Discriminatively boosted image
clustering with fully convolutional auto-encoders", Pattern Recognition 83) keeps DEC's objective,
KL(P‖Q) between the Student-t soft assignment Q and the sharpened target P (the "boosting" of
confident assignments), and changes the architecture: a convolutional autoencoder learns the
embedding of the images, so nearby pixels are treated as neighbours instead of as unrelated
features. In the taxonomy of ``notebooks/07_taxonomy.ipynb`` it is DEC with a different first axis.
"""

from __future__ import annotations

import numpy as np
import torch

from .dec import DEC

__all__ = ["DBC"]


class DBC(DEC):
    """DEC with a convolutional autoencoder on images of shape (n, C, H, W) — a named configuration.

    Same steps as ``DEC`` (pretrain, k-means on the embedding, self-training on KL(P‖Q)); only the
    defaults differ: ``autoencoder="conv"`` (``ConvAutoencoder``: three stride-2 convolutions and a
    linear bottleneck of size ``dims[-1]``), end-to-end pretraining (greedy layer-wise pretraining
    is for stacked MLPs), and a target update every 20 iterations with a smaller SGD step, which
    suits the convolutional encoder. The paper's autoencoder is fully convolutional; this one ends
    in a linear layer (the DCEC design). Flat input is rejected: reshape it to images first.
    Lesson: ``notebooks/07_taxonomy.ipynb`` (compared there with DEC on the MLP autoencoder).
    """

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="conv",
        alpha: float = 1.0,
        pretrain: str | None = "end-to-end",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        update_interval: int = 20,
        tol: float = 0.001,
        batch_size: int = 256,
        lr: float = 0.01,
        momentum: float = 0.9,
        max_iter: int = 2000,
        n_init: int = 20,
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        super().__init__(
            n_clusters=n_clusters, dims=dims, autoencoder=autoencoder, alpha=alpha, pretrain=pretrain,
            pretrain_epochs=pretrain_epochs, pretrain_lr=pretrain_lr, update_interval=update_interval, tol=tol,
            batch_size=batch_size, lr=lr, momentum=momentum, max_iter=max_iter, n_init=n_init, cache=cache,
            device=device, random_state=random_state, verbose=verbose,
        )

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        if X.dim() != 4:
            side = int(round(X[0].numel() ** 0.5))
            hint = (
                f" If each row is a flattened {side}x{side} grey image, pass X.reshape(-1, 1, {side}, {side})."
                if side * side == X[0].numel() else ""
            )
            raise ValueError(
                f"DBC clusters images of shape (n_samples, channels, height, width); got shape {tuple(X.shape)}."
                f"{hint} For flat features use DEC (MLP autoencoder)."
            )
        super()._fit(X, y)
