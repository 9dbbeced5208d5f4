"""DEPICT: Deep Embedded Regularized Clustering — a softmax on a noisy conv autoencoder's code.

A convolutional autoencoder runs twice on each batch: a clean encoder (giving z and the
predictions q_i = softmax(W z_i + b)) and a corrupted encoder (dropout on the input and on every
layer, giving z̃ and q̃_i) followed by the decoder. The loss is

    L = −1/n Σ_i Σ_k p_ik log q̃_ik  +  γ Σ_l ‖ĥ_l − h_l‖² / |h_l|,

with the balanced target p_ik ∝ q_ik / (Σ_i q_ik)^½ (``depict_target``, computed from the clean
path on the whole data set each epoch and held fixed) and ĥ_l the noisy decoder's layer that
mirrors the clean encoder's layer h_l (the input included). Predicting the target from the
noisy path regularises the classifier like dropout; the size term in the target keeps large
clusters from absorbing the small ones. Derived in ``notebooks/08_discriminative_methods.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..losses import depict_target
from ..models import ConvAutoencoder
from ..train import History, embed, train
from .base import AutoencoderClusterer
from .baselines import fit_kmeans

__all__ = ["DEPICT", "encoder_layers", "decoder_layers"]


def encoder_layers(ae: ConvAutoencoder, x: torch.Tensor, dropout: float = 0.0) -> list[torch.Tensor]:
    """[x, h_1, h_2, h_3, z] of the conv encoder; ``dropout`` > 0 corrupts x and every h_l."""
    corrupt = (lambda h: F.dropout(h, dropout, training=True)) if dropout > 0 else (lambda h: h)
    layers = [corrupt(x)]
    for conv in ae.encoder_convs:
        layers.append(corrupt(torch.relu(conv(layers[-1]))))
    layers.append(ae.to_embedding(layers[-1].flatten(1)))
    return layers


def decoder_layers(ae: ConvAutoencoder, z: torch.Tensor, shapes: list[torch.Size]) -> list[torch.Tensor]:
    """The decoder's layers in the encoder's order [x̂, ĥ_1, ĥ_2, ĥ_3] (``shapes`` of x, h_1, h_2, h_3)."""
    h = torch.relu(ae.from_embedding(z)).reshape(shapes[-1])
    out = [h]
    for i, deconv in enumerate(ae.decoder_convs):
        h = deconv(h)
        if i < len(ae.decoder_convs) - 1:
            h = torch.relu(h)
        out.append(h)
    return out[::-1]


class DEPICT(AutoencoderClusterer):
    """Deep Embedded Regularized Clustering (Ghasedi Dizaji et al., 2017).

    Steps: pretrain the conv autoencoder on the reconstruction error (shared, cached
    pretraining), train it ``layerwise_epochs`` more epochs on the layer-wise reconstruction
    term alone (noisy path, as DEPICT pretrains: without this, the hidden-layer terms start large
    and their gradients reshape the embedding during clustering), run k-means on the clean
    embedding and initialise the softmax layer as the nearest-centroid rule
    (logit_k = (μ_kᵀz − ½‖μ_k‖²) / s, s the mean squared distance of the points to their
    centroid), then for ``epochs`` epochs: compute the target P from the clean
    path on all the data, and take Adam steps on L above (``dropout`` is the corruption rate,
    ``gamma`` the reconstruction weight γ). The clean layers h_l are detached targets. Clusters are
    argmax of the clean prediction q. ``fit(X, y)`` uses ``y`` only to log ACC/NMI/ARI.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        embedding_dim: int = 10,
        autoencoder="conv",
        dropout: float = 0.1,
        gamma: float = 1.0,
        pretrain: str | None = "end-to-end",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        layerwise_epochs: int = 10,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-4,
        n_init: int = 10,
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.embedding_dim = embedding_dim
        self.autoencoder = autoencoder
        self.dropout = dropout
        self.gamma = gamma
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.layerwise_epochs = layerwise_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.n_init = n_init
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @property
    def dims(self) -> tuple[int, ...]:
        """Read by the shared pretraining: the conv autoencoder takes its code size from dims[-1]."""
        return (int(self.embedding_dim),)

    def _probs(self, X: torch.Tensor) -> torch.Tensor:
        self.autoencoder_.eval()
        return embed(lambda x: torch.softmax(self.head_(self.autoencoder_.encode(x)), dim=1), X)

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        if X.dim() != 4:
            raise ValueError(
                f"DEPICT needs images of shape (n, C, H, W), got {tuple(X.shape)}; reshape flat pixels, "
                "e.g. X.reshape(-1, 1, 28, 28)."
            )
        if int(self.epochs) < 1 or not 0 <= self.dropout < 1 or self.gamma < 0:
            raise ValueError(f"epochs >= 1, 0 <= dropout < 1 and gamma >= 0 needed, got {self.epochs!r}, "
                             f"{self.dropout!r}, {self.gamma!r}.")
        if not (self.autoencoder == "conv" or isinstance(self.autoencoder, ConvAutoencoder)):
            raise ValueError("DEPICT's layer-wise reconstruction needs a ConvAutoencoder (autoencoder='conv').")
        ae = self.autoencoder_ = self._pretrained_autoencoder(X)
        self.layerwise_history_ = self._train_layerwise(ae, X) if int(self.layerwise_epochs) > 0 else History()
        ae.eval()
        z = embed(ae.encode, X)
        kmeans = fit_kmeans(z, self.n_clusters, self.n_init, self.random_state)
        self.initial_labels_ = kmeans.labels_.astype(np.int64)
        mu = torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32, device=self.device_)
        scale = float(kmeans.inertia_) / len(X)
        self.head_ = nn.Linear(z.shape[1], self.n_clusters).to(self.device_)
        with torch.no_grad():  # argmax of the initial softmax = the nearest k-means centroid
            self.head_.weight.copy_(mu / scale)
            self.head_.bias.copy_(-0.5 * mu.pow(2).sum(1) / scale)
        optimizer = torch.optim.Adam([*ae.parameters(), *self.head_.parameters()], lr=self.lr)
        target = {"p": depict_target(self._probs(X))}
        metrics = History()

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            x = X[idx]
            noisy, recon = self._noisy_path(ae, x)
            log_q_noisy = torch.log_softmax(self.head_(noisy[-1]), dim=1)
            ce = -(target["p"][idx] * log_q_noisy).sum(1).mean()
            return {"loss": ce + self.gamma * recon, "cross_entropy": ce, "reconstruction": recon}

        def after_epoch(epoch: int, means: dict[str, float]) -> bool:
            q = self._probs(X)
            target["p"] = depict_target(q)
            if y is not None:
                metrics.log(**self._log_metrics(q.argmax(1).cpu().numpy(), y))
            ae.train()
            return False

        ae.train()
        epoch_history = train(
            step, optimizer, len(X), epochs=int(self.epochs), batch_size=int(self.batch_size),
            device=self.device_, generator=self._generator(2), after_epoch=after_epoch, desc="DEPICT",
            show_progress=self.verbose,
        )
        self.history_.update(epoch_history)
        self.history_.update(metrics)
        self.labels_ = self._predict(X)

    def _noisy_path(self, ae: ConvAutoencoder, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The corrupted encoder's layers and Σ_l mean (ĥ_l − h_l)² against the clean (detached) layers."""
        with torch.no_grad():
            clean = encoder_layers(ae, x)
        noisy = encoder_layers(ae, x, self.dropout)
        decoded = decoder_layers(ae, noisy[-1], [h.shape for h in clean[:-1]])
        return noisy, sum(F.mse_loss(h_hat, h) for h_hat, h in zip(decoded, clean[:-1], strict=True))

    def _train_layerwise(self, ae: ConvAutoencoder, X: torch.Tensor) -> History:
        """Adam on the layer-wise reconstruction term alone, through the shared loop."""
        ae.train()
        return train(
            lambda idx: self._noisy_path(ae, X[idx])[1], torch.optim.Adam(ae.parameters(), lr=self.pretrain_lr),
            len(X), epochs=int(self.layerwise_epochs), batch_size=int(self.batch_size), device=self.device_,
            generator=self._generator(1), desc="DEPICT layer-wise pretraining", show_progress=self.verbose,
        )

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return self._probs(X).argmax(1).cpu().numpy().astype(np.int64)

    def predict_proba(self, X) -> np.ndarray:
        """The clean path's softmax q."""
        return self._probs(self._check_X_predict(X)).cpu().numpy()
