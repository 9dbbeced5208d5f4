"""DeepClusterer: the taxonomy of deep clustering as one configurable estimator.

Aljalbout et al. (2018) describe an autoencoder-based deep clustering method by four choices:
the architecture, the non-clustering loss (here the reconstruction error L_rec), the clustering
loss L_clust, and how the two are combined over training. This estimator makes each choice a
parameter and minimises, in epoch t,

    L = L_rec + λ(t)·L_clust          (mode="joint")

or alternates epochs on λ(t)·L_clust with epochs on L_rec (mode="alternating"). DEC, IDEC and
DCN stay their own readable classes; this one exists to run the taxonomy's experiments with the
same loop, data and metrics. ``taxonomy_method`` is the paper's own configuration.
Lesson: ``notebooks/07_taxonomy.ipynb``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

from ..losses import (
    balanced_assignment_loss,
    cluster_classification_loss,
    dec_loss,
    group_sparsity_loss,
    kmeans_assignment,
    kmeans_loss,
    reconstruction_loss,
    student_t_assignment,
    target_distribution,
)
from ..train import History, embed, train
from .base import AutoencoderClusterer
from .baselines import fit_kmeans

__all__ = ["DeepClusterer", "taxonomy_method", "lambda_schedule", "training_phases", "CLUSTER_LOSSES", "SCHEDULES"]

#: The clustering losses by name, and what each one does to the embedding z = f(x).
CLUSTER_LOSSES = {
    "hardening": "KL(P‖Q) of the Student-t soft assignment Q to DEC's sharpened target P (refreshed each epoch)",
    "kmeans": "½‖z_i − μ_{s_i}‖² with the hard assignment s_i = argmin_k ‖z_i − μ_k‖² (DCN's term)",
    "balanced": "KL(f‖uniform) of the batch's cluster distribution f_j = mean_i q_ij",
    "group_sparsity": "Σ_g √n_g ‖z_i^(g)‖₂ over K groups of embedding coordinates (cluster = largest group)",
    "classification": "cross-entropy of a linear cluster head on k-means pseudo-labels (refreshed each epoch)",
}
#: The λ schedules by name; ``lambda_schedule`` gives the formulas.
SCHEDULES = ("constant", "linear", "pretrain_then_joint", "step")
MODES = ("joint", "alternating")


def _names(text: str) -> str:
    return ", ".join(repr(n) for n in text)


def lambda_schedule(
    schedule: str, epochs: int, lamda: float, schedule_epochs: int = 5, step_factor: float = 2.0
) -> np.ndarray:
    """The weight λ(t) of the clustering loss for each epoch t = 0 … epochs−1.

    * ``"constant"``: λ(t) = λ.
    * ``"linear"``: a ramp that reaches λ after ``schedule_epochs`` epochs, λ(t) = λ·min(1, (t+1)/s),
      so early epochs, when the clusters of the pretrained embedding are still poor, weigh little.
    * ``"pretrain_then_joint"``: λ(t) = 0 for t < s (more reconstruction-only training), then λ.
    * ``"step"``: λ(t) = λ·factor^⌊t/s⌋, multiplied by ``step_factor`` every s epochs (a factor
      above 1 strengthens the clustering loss in steps, below 1 weakens it).

    Lesson: ``notebooks/07_taxonomy.ipynb`` (plotted there).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {_names(SCHEDULES)}, got {schedule!r}.")
    if not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}.")
    if not isinstance(lamda, numbers.Real) or not math.isfinite(lamda) or lamda < 0:
        raise ValueError(f"lamda (the clustering loss's weight) must be a finite number >= 0, got {lamda!r}.")
    smallest = 0 if schedule in ("constant", "pretrain_then_joint") else 1
    if not isinstance(schedule_epochs, numbers.Integral) or schedule_epochs < smallest:
        raise ValueError(
            f"schedule_epochs must be an integer >= {smallest} for schedule={schedule!r}, got {schedule_epochs!r}."
        )
    if not isinstance(step_factor, numbers.Real) or not math.isfinite(step_factor) or step_factor <= 0:
        raise ValueError(f"step_factor must be a positive number, got {step_factor!r}.")
    t = np.arange(int(epochs), dtype=np.float64)
    if schedule == "constant":
        factor = np.ones_like(t)
    elif schedule == "linear":
        factor = np.minimum(1.0, (t + 1) / schedule_epochs)
    elif schedule == "pretrain_then_joint":
        factor = (t >= schedule_epochs).astype(np.float64)
    else:
        factor = float(step_factor) ** np.floor(t / schedule_epochs)
    return float(lamda) * factor


def training_phases(lamdas, mode: str) -> list[str]:
    """What the network is trained on in each epoch: ``"joint"``, ``"cluster"`` or ``"reconstruction"``.

    An epoch with λ(t) = 0 trains on the reconstruction alone, in both modes. Otherwise
    ``mode="joint"`` trains on L_rec + λ(t)·L_clust, and ``mode="alternating"`` takes turns: an
    epoch on λ(t)·L_clust (encoder and cluster parameters; the decoder is frozen), then an epoch
    on L_rec (encoder and decoder; the cluster parameters are frozen), starting with the former.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {_names(MODES)}, got {mode!r}.")
    phases: list[str] = []
    for lam in np.asarray(lamdas, dtype=np.float64):
        if lam == 0:
            phases.append("reconstruction")
        elif mode == "joint":
            phases.append("joint")
        else:
            phases.append("reconstruction" if phases and phases[-1] == "cluster" else "cluster")
    return phases


def _group_norms(z: torch.Tensor, n_groups: int) -> torch.Tensor:
    """‖z_i^(g)‖₂ for the contiguous coordinate groups ``group_sparsity_loss`` uses, shape (n, G)."""
    return torch.stack([chunk.norm(dim=1) for chunk in z.tensor_split(n_groups, dim=1)], dim=1)


class DeepClusterer(AutoencoderClusterer):
    """Autoencoder + a clustering loss + a λ schedule + a training mode (the taxonomy, runnable).

    Steps: pretrain the autoencoder on reconstruction (``pretrain``, cached), run k-means on its
    embedding (``n_init`` restarts) to initialise the centroids μ (and the cluster head for
    ``"classification"``), then train for ``epochs`` epochs with Adam (``lr``) on the loss the
    schedule and the mode give (``lambda_schedule``, ``training_phases``), with the one training
    loop ``dclib.train.train``.

    ``cluster_loss`` is a name from ``CLUSTER_LOSSES`` or several joined by ``"+"`` (their sum,
    e.g. ``"hardening+balanced"``); the first name fixes the cluster assignment rule:
    nearest centroid for ``hardening``/``kmeans``/``balanced`` (argmax of the Student-t q is the
    nearest centroid), largest group norm for ``group_sparsity``, argmax of the head for
    ``classification``. Targets that the loss holds fixed — DEC's P, the k-means pseudo-labels
    (warm-started from the previous epoch's centres so cluster indices stay put) — are recomputed
    on the whole data set at the start of every epoch.

    ``final_kmeans=True`` re-runs k-means on the final embedding and uses it for ``labels_`` and
    ``predict``; the loss's own assignment is kept in ``assignment_labels_`` either way.
    ``history_`` has one row per epoch: ``lamda``, ``trains_cluster``/``trains_reconstruction``
    (1 when that term was optimised), the epoch means of ``loss``, ``reconstruction``, each
    clustering term by name and ``cluster`` (their sum); ``<term>_start``/``<term>_end``, each term
    on the whole data set at the start and the end of the epoch with that epoch's fixed targets (the
    objective the epoch optimised; the next epoch's refreshed target may start higher); and, with
    ``fit(X, y)``, ``acc``/``nmi``/``ari`` of the loss's own assignment at the end of the epoch.
    Lesson: ``notebooks/07_taxonomy.ipynb``.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="mlp",
        cluster_loss: str = "hardening",
        lamda: float = 0.1,
        schedule: str = "constant",
        schedule_epochs: int = 5,
        step_factor: float = 2.0,
        mode: str = "joint",
        final_kmeans: bool = False,
        pretrain: str | None = "end-to-end",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        alpha: float = 1.0,
        n_init: int = 10,
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.dims = dims
        self.autoencoder = autoencoder
        self.cluster_loss = cluster_loss
        self.lamda = lamda
        self.schedule = schedule
        self.schedule_epochs = schedule_epochs
        self.step_factor = step_factor
        self.mode = mode
        self.final_kmeans = final_kmeans
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.alpha = alpha
        self.n_init = n_init
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _loss_names(self) -> list[str]:
        if not isinstance(self.cluster_loss, str) or not self.cluster_loss.strip():
            raise ValueError(
                f"cluster_loss must be a name from {_names(CLUSTER_LOSSES)} (or several joined by '+'), "
                f"got {self.cluster_loss!r}."
            )
        names = [n.strip() for n in self.cluster_loss.split("+")]
        unknown = [n for n in names if n not in CLUSTER_LOSSES]
        if unknown:
            raise ValueError(
                f"unknown cluster_loss {unknown[0]!r}: use one of {_names(CLUSTER_LOSSES)}, or several "
                "joined by '+' (e.g. 'hardening+balanced')."
            )
        if len(set(names)) != len(names):
            raise ValueError(f"cluster_loss names a term twice: {self.cluster_loss!r}.")
        return names

    def _check_hyperparameters(self) -> tuple[list[str], np.ndarray, list[str]]:
        names = self._loss_names()
        for name in ("batch_size", "n_init"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("lr", "alpha"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if not isinstance(self.final_kmeans, (bool, np.bool_)):
            raise ValueError(f"final_kmeans must be True or False, got {self.final_kmeans!r}.")
        if "group_sparsity" in names:
            given = self.autoencoder
            dim = given.embedding_dim if isinstance(given, nn.Module) else (self.dims or (10,))[-1]
            if dim < self.n_clusters:
                raise ValueError(
                    f"group_sparsity splits the embedding into n_clusters={self.n_clusters} groups, but it has "
                    f"only {dim} coordinates; use dims ending in >= {self.n_clusters} (e.g. dims=(..., "
                    f"{2 * self.n_clusters}))."
                )
        lamdas = lambda_schedule(self.schedule, self.epochs, self.lamda, self.schedule_epochs, self.step_factor)
        return names, lamdas, training_phases(lamdas, self.mode)

    # ------------------------------------------------------------------ the clustering terms
    def _assign(self, z: torch.Tensor) -> torch.Tensor:
        """The cluster of each embedded point by the first loss's own rule."""
        first = self.loss_names_[0]
        if first == "group_sparsity":
            return _group_norms(z, self.n_clusters).argmax(1)
        if first == "classification":
            return self.classifier_(z).argmax(1)
        return kmeans_assignment(z, self.centroids_)

    def _cluster_terms(self, z: torch.Tensor, idx: torch.Tensor, targets: dict) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        q = None
        for name in self.loss_names_:
            if name in ("hardening", "balanced") and q is None:
                q = student_t_assignment(z, self.centroids_, self.alpha)
            if name == "hardening":
                terms[name] = dec_loss(targets["p"][idx], q, reduction="mean")
            elif name == "balanced":
                terms[name] = balanced_assignment_loss(q)
            elif name == "kmeans":
                terms[name] = kmeans_loss(z, self.centroids_, kmeans_assignment(z.detach(), self.centroids_.detach()))
            elif name == "group_sparsity":
                terms[name] = group_sparsity_loss(z, self.n_clusters)
            else:
                terms[name] = cluster_classification_loss(self.classifier_(z), targets["pseudo"][idx])
        return terms

    @torch.no_grad()
    def _terms_on_all(self, Z: torch.Tensor, targets: dict) -> dict[str, float]:
        """Each clustering term on the whole data set, with the targets of the current epoch."""
        terms = self._cluster_terms(Z, torch.arange(len(Z), device=Z.device), targets)
        return {name: float(value) for name, value in terms.items()}

    def _refresh_targets(self, Z: torch.Tensor, targets: dict) -> None:
        """Recompute what the loss holds fixed during an epoch, on the whole data set."""
        if "hardening" in self.loss_names_:
            targets["p"] = target_distribution(student_t_assignment(Z, self.centroids_.detach(), self.alpha))
        if "classification" in self.loss_names_:
            start = targets["pseudo_centers"]
            km = KMeans(self.n_clusters, init=start, n_init=1).fit(Z.cpu().numpy().astype(np.float64))
            targets["pseudo_centers"] = km.cluster_centers_
            targets["pseudo"] = torch.as_tensor(km.labels_.astype(np.int64), device=Z.device)

    # ------------------------------------------------------------------ fit / predict
    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        self.loss_names_, self.lamdas_, self.phases_ = self._check_hyperparameters()
        ae = self.autoencoder_ = self._pretrained_autoencoder(X)
        ae.eval()
        Z = embed(ae.encode, X)
        kmeans = fit_kmeans(Z, self.n_clusters, int(self.n_init), self.random_state)
        self.initial_labels_ = kmeans.labels_.astype(np.int64)
        centers = torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32, device=self.device_)
        self.centroids_ = nn.Parameter(centers.clone())
        cluster_params: list[nn.Parameter] = [self.centroids_]
        self.classifier_ = None
        if "classification" in self.loss_names_:
            # Start as the nearest-centroid classifier: argmax_k (2μ_k·z − ‖μ_k‖²) = argmin_k ‖z − μ_k‖².
            self.classifier_ = nn.Linear(ae.embedding_dim, self.n_clusters).to(self.device_)
            with torch.no_grad():
                self.classifier_.weight.copy_(2 * centers)
                self.classifier_.bias.copy_(-centers.pow(2).sum(1))
            cluster_params += list(self.classifier_.parameters())
        optimizer = torch.optim.Adam([*ae.parameters(), *cluster_params], lr=self.lr)

        targets: dict = {"pseudo_centers": kmeans.cluster_centers_}
        self._refresh_targets(Z, targets)
        epoch = {"t": 0, "start": self._terms_on_all(Z, targets)}
        log = History()

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            t = epoch["t"]
            phase, lam = self.phases_[t], float(self.lamdas_[t])
            x = X[idx]
            z = ae.encode(x)
            with torch.set_grad_enabled(phase != "cluster"):  # the decoder is frozen in a cluster epoch
                rec = reconstruction_loss(ae.decode(z), x)
            with torch.set_grad_enabled(phase != "reconstruction"):  # terms only logged there
                terms = self._cluster_terms(z, idx, targets)
            cluster = sum(terms.values())
            if phase == "reconstruction":
                loss = rec
            elif phase == "cluster":
                loss = lam * cluster
            else:
                loss = rec + lam * cluster
            return {"loss": loss, "reconstruction": rec, **terms, "cluster": cluster}

        def after_epoch(t: int, means: dict[str, float]) -> bool:
            ae.eval()
            Z = embed(ae.encode, X)
            phase = self.phases_[t]
            end = self._terms_on_all(Z, targets)
            log.log(
                lamda=self.lamdas_[t], trains_cluster=phase != "reconstruction",
                trains_reconstruction=phase != "cluster",
                **{f"{name}_start": value for name, value in epoch["start"].items()},
                **{f"{name}_end": value for name, value in end.items()},
                **self._log_metrics(embed(self._assign, Z).cpu().numpy(), y),
            )
            epoch["t"] = t + 1
            if t + 1 < len(self.phases_):
                self._refresh_targets(Z, targets)
                epoch["start"] = self._terms_on_all(Z, targets)
            ae.train()
            return False

        ae.train()
        epoch_history = train(
            step, optimizer, len(X), epochs=len(self.lamdas_), batch_size=int(self.batch_size),
            device=self.device_, generator=self._generator(2), after_epoch=after_epoch,
            desc=type(self).__name__, show_progress=self.verbose,
        )
        self.history_.update(epoch_history)
        self.history_.update(log)
        ae.eval()
        Z = embed(ae.encode, X)
        self.assignment_labels_ = embed(self._assign, Z).cpu().numpy().astype(np.int64)
        self.cluster_centers_ = self.centroids_.detach().cpu().numpy()
        if self.final_kmeans:
            final = fit_kmeans(Z, self.n_clusters, int(self.n_init), self.random_state)
            self.kmeans_centers_ = torch.as_tensor(final.cluster_centers_, dtype=torch.float32, device=self.device_)
            self.labels_ = final.labels_.astype(np.int64)
        else:
            self.kmeans_centers_ = None
            self.labels_ = self.assignment_labels_

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        """The rule ``labels_`` used: nearest final k-means centre, or the loss's own assignment."""
        self.autoencoder_.eval()
        Z = embed(self.autoencoder_.encode, X)
        if self.final_kmeans:
            return kmeans_assignment(Z, self.kmeans_centers_).cpu().numpy().astype(np.int64)
        return embed(self._assign, Z).cpu().numpy().astype(np.int64)


def taxonomy_method(n_clusters: int = 10, **overrides) -> DeepClusterer:
    """The method Aljalbout et al. (2018) propose in "Clustering with deep learning: taxonomy and new methods".

    Their choices on each axis of the taxonomy: a convolutional autoencoder on the images
    (``autoencoder="conv"``), pretrained on the reconstruction alone; then joint training of
    L_rec + λ·KL(P‖Q), the cluster-assignment hardening loss of DEC (``cluster_loss="hardening"``,
    ``mode="joint"``, ``schedule="constant"``); and a final k-means on the learned embedding
    (``final_kmeans=True``) instead of reading the soft assignments. The paper's network is fully
    convolutional; the library's ``ConvAutoencoder`` has stride-2 convolutions and a linear
    bottleneck (the DCEC/DBC design). λ, epochs and learning rates are this course's choices;
    any of them (or any other argument) can be overridden. Returns an unfitted ``DeepClusterer``.
    Lesson: ``notebooks/07_taxonomy.ipynb``.
    """
    params = dict(
        autoencoder="conv", cluster_loss="hardening", lamda=0.1, schedule="constant", mode="joint",
        final_kmeans=True, pretrain="end-to-end", pretrain_epochs=50, epochs=20, lr=1e-3,
    )
    params.update(overrides)
    return DeepClusterer(n_clusters, **params)
