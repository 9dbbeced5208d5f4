"""VaDE: a variational autoencoder whose prior is a Gaussian mixture, p(c) p(z|c) p(x|z).

VaDE maximises the ELBO  E_q[log p(x, z, c) − log q(z, c | x)]  with q(z|x) = N(μ̃(x), σ̃²(x)) and
q(c|x) = p(c|z) (the optimal choice); clusters are argmax_c γ_c and new digits come from
z ~ N(μ_c, σ_c²). Derived in ``notebooks/04_vade_elbo.ipynb``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.utils.parallel import Parallel, delayed
from torch import nn

from .. import distributed as dist
from .. import mixture
from ..losses import vade_elbo, vade_responsibilities
from ..models import Autoencoder
from ..train import History, cuda_graphs_enabled, decay_learning_rate, embed, train
from .base import AutoencoderClusterer

__all__ = ["VaDE", "VaDENet"]


def _diagonal_moments(resp: np.ndarray, Z: np.ndarray, reg_covar: float) -> tuple[np.ndarray, ...]:
    """Weights, means and per-dimension variances (+ ``reg_covar``) of the clusters given by ``resp`` (n, K):
    one-hot rows for a partition, responsibilities for a soft one. Lecture 04, section 8.1."""
    counts = resp.sum(0)
    safe = np.maximum(counts, np.finfo(float).tiny)[:, None]  # an empty cluster keeps finite moments
    means = resp.T @ Z / safe
    variances = np.maximum(resp.T @ Z**2 / safe - means**2, 0.0) + reg_covar
    return counts / len(Z), means, variances


# The full start's EM restarts run on at most this many embedded samples (the best is then refined on all of them):
# enough to find the clusters of ten digits, and on full MNIST each restart costs a seventh of one on all 70,000.
START_SAMPLE_SIZE = 10_000


def _full_mixture(Z: np.ndarray, n_clusters: int, n_init: int, random_state: int | None,
                  n_jobs: int | None = None, device: torch.device | None = None) -> GaussianMixture:
    """The most likely of ``n_init`` full-covariance EM runs (no labels), each seeded by k-means++ means.

    Why k-means++ and not scikit-learn's default, a k-means run: Lloyd's iterations send most restarts to the same
    optimum, which on full MNIST can merge two digits and split a third; k-means++ seeds alone are more varied, and
    the run with the highest likelihood is the one that separates the digits (lecture 04, section 8.5). Restarts run
    on a random ``START_SAMPLE_SIZE`` rows of ``Z`` when it has more, and the best is refined by EM on all of them.
    They are independent, so ``n_jobs`` CPU processes run them side by side (joblib's convention: ``None`` is one,
    ``-1`` every core); the result is the same for any ``n_jobs``: that of ``GaussianMixture(n_init=n_init)``.
    With a ``device``, ``dclib.mixture`` runs the same restarts there instead, all at once (``n_jobs`` unused).
    """
    sample = Z
    if len(Z) > START_SAMPLE_SIZE:
        sample = Z[np.random.default_rng(random_state).choice(len(Z), START_SAMPLE_SIZE, replace=False)]
    if device is None:
        states = mixture.restart_states(sample, n_clusters, n_init, random_state)
        restarts = [GaussianMixture(n_clusters, covariance_type="full", init_params="k-means++", random_state=state)
                    for state in states]  # plain scikit-learn objects: a worker process imports scikit-learn, not torch
        with warnings.catch_warnings():  # convergence is judged on the restart that is kept, as n_init does
            warnings.simplefilter("ignore", ConvergenceWarning)
            runs = Parallel(n_jobs=n_jobs)(delayed(restart.fit)(sample) for restart in restarts)
        best = runs[int(np.argmax([run.lower_bound_ for run in runs]))]  # the first of equals, as n_init keeps
    else:
        best = mixture.kmeanspp_mixture(sample, n_clusters, n_init, random_state, device)
    if not best.converged_:
        warnings.warn("VaDE's full start: the most likely EM restart did not converge; its mixture is used as it is.",
                      ConvergenceWarning, stacklevel=3)
    if sample is Z:
        return best
    if device is not None:
        return mixture.refined_mixture(Z, best, device, random_state)
    return GaussianMixture(n_clusters, covariance_type="full", random_state=random_state, weights_init=best.weights_,
                           means_init=best.means_, precisions_init=best.precisions_).fit(Z)


def _diagonal_mixture(weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> GaussianMixture:
    """A diagonal ``GaussianMixture`` with exactly these parameters (no EM run: EM would move them towards the
    diagonal model's own optimum), so that it scores and predicts like a fitted one."""
    gmm = GaussianMixture(len(weights), covariance_type="diag")
    gmm.weights_, gmm.means_, gmm.covariances_ = weights, means, variances
    gmm.precisions_cholesky_ = 1.0 / np.sqrt(variances)
    gmm.precisions_ = 1.0 / variances
    gmm.converged_, gmm.n_iter_, gmm.lower_bound_ = True, 0, -np.inf
    gmm.n_features_in_ = means.shape[1]
    return gmm


class VaDENet(nn.Module):
    """An autoencoder plus a twin of its embedding layer that outputs log σ̃² of q(z|x)."""

    def __init__(self, autoencoder: Autoencoder, init_logvar: float = -4.0):
        super().__init__()
        self.autoencoder = autoencoder
        emb = autoencoder.embedding_layer
        self.logvar_head = nn.Linear(emb.in_features, emb.out_features)
        nn.init.zeros_(self.logvar_head.weight)
        nn.init.constant_(self.logvar_head.bias, init_logvar)  # start near the deterministic AE

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.autoencoder.features(x)
        return self.autoencoder.embedding_layer(h), self.logvar_head(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x|z), flat."""
        return self.autoencoder.decode(z).reshape(len(z), -1)


class VaDE(AutoencoderClusterer):
    """Variational Deep Embedding (Jiang et al., 2017).

    Pretrains the autoencoder (Bernoulli/BCE reconstruction), fits a diagonal
    ``GaussianMixture`` on the embedding to initialise π, μ_c, σ_c², then maximises the ELBO
    with Adam (learning rate × ``lr_decay`` every 10 epochs). π is kept on the simplex as a
    softmax of free logits. ``lr`` defaults to 5e-4, not the paper's 2e-3: on ``mnist5k`` with
    25 pretraining epochs, 2e-3 merged clusters for one seed in three (ACC 0.583 at the GMM
    start → 0.424), 5e-4 did not (→ 0.606); see benchmarks/RESULTS.md.
    ``fit(X, y)`` uses ``y`` only for ACC/NMI/ARI in ``history_``.

    ``mixture_start`` picks the mixture VaDE starts from; VaDE ends close to it (lecture 04,
    section 8.1). ``"gmm"`` (default) is scikit-learn's best of ``n_init`` EM runs, each started
    from a one-restart k-means; ``"kmeans"`` is one EM run started from the partition of a
    ``kmeans_n_init``-restart k-means; ``"best"`` fits both and keeps the one with the higher mean
    log-likelihood (no labels used); ``"full"`` fits a full-covariance ``GaussianMixture`` (the most
    likely of ``n_init`` restarts seeded by k-means++, on at most 10,000 samples, then refined on all)
    and starts from the diagonal Gaussians of its clusters (their weights, means and per-dimension
    variances, from its responsibilities; no diagonal EM afterwards, which would pull them back to the
    diagonal model's optimum). Why: inside the clusters the embedding's dimensions are correlated
    (section 8.4), and a diagonal EM then merges and splits digits where a full one does not.
    ``mixture_log_likelihoods_`` records the candidates' scores and ``mixture_start_`` the one kept;
    ``mixture_seconds_`` the time spent on the mixtures (the start and the final refit, embeddings
    included), so that a GPU benchmark can tell them from the training (see ``mixture_backend``).
    Measured on ``mnist5k`` (course configuration, 6 seeds, 2 threads, ``benchmarks/vade_start.py``):
    ``"best"`` ends at ACC 0.596 ± 0.039, ``"gmm"`` at 0.597 ± 0.040 — no gain, so the default stays
    the simpler one. ``"full"`` does gain: from the same 50-epoch autoencoders, 20 ELBO epochs, 6
    seeds, VaDE's own labels end at ACC 0.711 ± 0.036 against the default's 0.661 ± 0.051, higher on
    every seed (+0.011 to +0.116); with the full refit the gain is smaller and mixed, 0.736 ± 0.045
    against 0.719 ± 0.046 (``benchmarks/vade_levers.py start``, benchmarks/RESULTS.md, session 13;
    then with k-means-seeded restarts on all samples). On full MNIST the full mixture's EM has several
    optima, and the most likely one is the one that separates the digits: take ``n_init=20`` there.
    From 50-epoch augmented pretrainings (below), 3 seeds, VaDE's own labels then reach ACC
    0.948 ± 0.024 and the full refit 0.964 ± 0.008; seed 0's autoencoder gave 0.822 and 0.861 with
    five k-means-seeded restarts (session 15, lecture 04, section 8.5). On an H200 (session 16, with
    the augmented pretraining, 3 seeds) it reached 0.908 ± 0.055 own / 0.917 ± 0.068 refit on the
    MNIST test set in 14 s and 0.958 ± 0.007 / 0.959 ± 0.021 on full MNIST in 25 s. It is not the
    default: the lectures' committed runs and measured tables use ``"gmm"``. ``n_jobs`` runs the
    restarts in parallel processes; the result does not depend on it.

    ``mixture_backend`` says where the full-covariance EM (``"full"``'s restarts and the ``"full"`` refit)
    runs. ``"sklearn"`` is scikit-learn's ``GaussianMixture`` on the CPU; ``"torch"`` is
    ``dclib.mixture``: the same algorithm, the same seeds, all restarts at once in float64 on the
    estimator's device (tested against scikit-learn to 1e-8); ``"auto"`` (default) takes ``"torch"``
    on a GPU and ``"sklearn"`` on the CPU. Why: on an H200 the CPU's EM was, by elimination, most of the
    time a VaDE fit spent beyond AE + k-means (session 16); on a 2-core CPU scikit-learn is the faster of the two
    (20 restarts on 10,000 codes: 4.3 s against 5.8 s). The diagonal starts stay scikit-learn's.

    ``pretrain_augment=True`` pretrains the autoencoder on shifted and rotated digits (DEC-DA's
    augmentation, ``dclib.augment.SHIFT_ROTATE``; or pass an ``Augment``), reconstructing the moved
    image. Why: VaDE ends near its start, and the start is only as good as the embedding. A plain
    autoencoder trained longer overfits the digits it sees (on ``mnist5k``, seed 0, the full start's
    ACC fell from 0.727 after 50 epochs to 0.635 after 200), while an augmented one keeps improving
    (0.761 → 0.825): it must code what a digit is, not its pixels. On the MNIST test set (200 epochs,
    ``mixture_start="full"``, 30 ELBO epochs, 3 seeds) VaDE's own labels reached ACC 0.941 ± 0.009,
    against 0.792 ± 0.050 without it (benchmarks/RESULTS.md, session 14; lecture 01, section 9.1).
    It is off by default: the course's CPU budgets (25-50 epochs) are too short for it to pay off,
    and it needs images (n, C, H, W).

    ``final_mixture`` says which mixture gives the clusters after training. ``None`` (default) is
    VaDE's own: argmax γ under its diagonal prior. ``"full"`` is an explicit second stage: a
    full-covariance ``GaussianMixture`` refitted on the final embedding, started at VaDE's means,
    then ``labels_``, ``predict`` and ``predict_proba`` use it (``own_labels_`` keeps argmax γ, and
    ``sample`` still draws from VaDE's prior). Why it helps: the ELBO's diagonal prior cannot
    describe clusters whose embedding dimensions are correlated, and a full covariance can
    (lecture 04, section 8.4). On ``mnist5k`` (course configuration, six seeds, two threads) it raised
    ACC on every seed, 0.642 ± 0.052 → 0.710 ± 0.047 (benchmarks/RESULTS.md, session 10). It is the
    step ClustPy 0.0.3 applies before it reports its VaDE's ``labels_``.

    Data parallel under ``torchrun`` (``dclib.distributed``, lecture 12): the GMM is fitted once, on
    rank 0, on the gathered embedding of all samples, and every rank draws the reparameterisation
    noise of the whole global batch, so a W-process step equals the single-process step.
    """

    _pretrain_recon_loss = "bce"

    def __init__(
        self,
        n_clusters: int = 10,
        dims: tuple[int, ...] = (784, 500, 500, 2000, 10),
        autoencoder="mlp",
        pretrain: str | None = "end-to-end",
        pretrain_epochs: int = 50,
        pretrain_lr: float = 1e-3,
        pretrain_augment=None,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 5e-4,
        lr_decay: float = 0.9,
        n_init: int = 5,
        mixture_start: str = "gmm",
        kmeans_n_init: int = 10,
        final_mixture: str | None = None,
        n_jobs: int | None = None,
        mixture_backend: str = "auto",
        cache: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.dims = dims
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.pretrain_augment = pretrain_augment
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.n_init = n_init
        self.mixture_start = mixture_start
        self.kmeans_n_init = kmeans_n_init
        self.final_mixture = final_mixture
        self.n_jobs = n_jobs
        self.mixture_backend = mixture_backend
        self.cache = cache
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ parameters
    @property
    def weights_(self) -> torch.Tensor:
        """Mixture weights π = softmax(logits): always on the simplex."""
        return torch.softmax(self.pi_logits_, dim=0)

    def _gmm_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.weights_, self.means_, self.logvars_

    def _responsibilities(self, X: torch.Tensor) -> torch.Tensor:
        self.net_.eval()
        return embed(lambda x: vade_responsibilities(self.net_.encode(x)[0], *self._gmm_parameters()), X)

    def _labels(self, X: torch.Tensor) -> np.ndarray:
        """argmax γ of every sample; data parallel, each rank computes its rows and they are gathered."""
        labels = dist.gather_rows(self._responsibilities(dist.shard_rows(X)).argmax(1))
        return labels.cpu().numpy().astype(np.int64)

    # ------------------------------------------------------------------ fit
    def _initial_mixture(self, Z: np.ndarray) -> tuple[GaussianMixture, dict[str, float]]:
        """The diagonal GMM that VaDE starts from, chosen by likelihood (no labels); see the class doc.

        Returns the mixture and every candidate's mean log-likelihood (a pure function of ``Z``, so
        that data parallel it runs on rank 0 and the result is broadcast).
        """
        options = dict(covariance_type="diag", reg_covar=1e-4, random_state=self.random_state)
        candidates: dict[str, GaussianMixture] = {}
        if self.mixture_start in ("best", "gmm"):
            candidates["gmm"] = GaussianMixture(self.n_clusters, n_init=self.n_init, **options).fit(Z)
        if self.mixture_start in ("best", "kmeans"):
            # EM started from a well-restarted k-means partition: its weights, means and variances.
            parts = KMeans(self.n_clusters, n_init=self.kmeans_n_init, random_state=self.random_state).fit_predict(Z)
            weights, means, variances = _diagonal_moments(np.eye(self.n_clusters)[parts], Z, options["reg_covar"])
            candidates["kmeans"] = GaussianMixture(self.n_clusters, weights_init=weights, means_init=means,
                                                   precisions_init=1.0 / variances, **options).fit(Z)
        if self.mixture_start == "full":
            # The clusters of a full-covariance mixture (which can follow correlated clusters), described by the
            # diagonal Gaussians VaDE's prior has: each component's weight, mean and per-dimension variance.
            full = _full_mixture(Z, self.n_clusters, self.n_init, self.random_state, self.n_jobs, self._em_device())
            candidates["full"] = _diagonal_mixture(*_diagonal_moments(full.predict_proba(Z), Z, options["reg_covar"]))
        scores = {name: float(g.score(Z)) for name, g in candidates.items()}
        return candidates[max(scores, key=scores.get)], scores

    def _em_device(self) -> torch.device | None:
        """Where ``dclib.mixture`` runs the full-covariance EM, or None for scikit-learn on the CPU."""
        backend = self.mixture_backend
        if backend == "auto":
            backend = "torch" if self.device_.type == "cuda" else "sklearn"
        return self.device_ if backend == "torch" else None

    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError("epochs must be >= 0 and batch_size >= 1.")
        if self.mixture_start not in ("best", "gmm", "kmeans", "full"):
            raise ValueError(f"mixture_start must be 'best', 'gmm', 'kmeans' or 'full', got {self.mixture_start!r}.")
        if self.final_mixture not in (None, "full"):
            raise ValueError(f"final_mixture must be None (VaDE's own γ) or 'full', got {self.final_mixture!r}.")
        if self.mixture_backend not in ("auto", "sklearn", "torch"):
            raise ValueError(f"mixture_backend must be 'auto', 'sklearn' or 'torch', got {self.mixture_backend!r}.")
        if not (float(X.min()) >= 0.0 and float(X.max()) <= 1.0):
            raise ValueError("VaDE's Bernoulli likelihood needs X scaled to [0, 1]; rescale the data first.")
        ae = self._pretrained_autoencoder(X)
        self.net_ = VaDENet(ae).to(self.device_)
        self.autoencoder_ = ae  # transform() uses the mean of q(z|x)
        ae.eval()
        # Data parallel: the mixture is fitted once, on rank 0, on *all* samples' embedding (a
        # per-shard GMM would be the mixture of one shard; see dist.distributed_gmm_em).
        clock = time.perf_counter()  # the mixtures' EM, timed apart: on a GPU it may run on the CPU (mixture_backend)
        Z = self._all_codes(ae, X)
        gmm, self.mixture_log_likelihoods_ = dist.on_rank0(lambda: self._initial_mixture(Z))
        self.mixture_seconds_ = time.perf_counter() - clock
        self.mixture_start_ = max(self.mixture_log_likelihoods_, key=self.mixture_log_likelihoods_.get)
        self.initial_labels_ = gmm.predict(Z).astype(np.int64)
        as_param = lambda a: nn.Parameter(torch.as_tensor(a, dtype=torch.float32, device=self.device_))
        self.pi_logits_ = as_param(np.log(gmm.weights_))
        self.means_ = as_param(gmm.means_)
        self.logvars_ = as_param(np.log(gmm.covariances_))

        params = [*self.net_.parameters(), self.pi_logits_, self.means_, self.logvars_]
        # On a GPU every step is a replayed CUDA graph (``train``'s ``cuda_graph``): the
        # optimiser keeps its step counter on the device and its lr is a tensor decayed in place.
        graphed = cuda_graphs_enabled(self.device_)
        lr = torch.tensor(self.lr, device=self.device_) if graphed else self.lr
        optimizer = torch.optim.Adam(params, lr=lr, capturable=graphed)
        flat = X.reshape(len(X), -1)
        metrics = History()

        # The size of each global batch, for the noise (a host-side counter: no sync). In one process
        # ``shard_normal`` is ``randn_like(z_mean)``; data parallel, every rank draws the global
        # batch's noise and keeps its rows, so the step is the single-process step.
        sizes = [min(self.batch_size, len(X) - start) for start in range(0, len(X), self.batch_size)]
        batch = {"i": 0}

        def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            x = flat[idx]
            z_mean, z_logvar = self.net_.encode(x)
            n_global = len(idx)
            if dist.is_distributed():  # (never graphed: a replayed step runs no Python)
                n_global = sizes[batch["i"]]
                batch["i"] += 1
            eps = dist.shard_normal(n_global, z_mean.shape[1], z_mean)
            z = z_mean + eps * torch.exp(0.5 * z_logvar)  # reparameterisation
            out = vade_elbo(x, self.net_.decode(z), z_mean, z_logvar, *self._gmm_parameters(), z=z)
            terms = {k: v for k, v in out.items() if k not in ("per_sample", "gamma")}
            return {"loss": -out["elbo"], **terms}

        def after_epoch(epoch: int, means: dict[str, float]) -> bool:
            if (epoch + 1) % 10 == 0:  # StepLR(step_size=10, gamma=lr_decay)
                decay_learning_rate(optimizer, self.lr_decay)
            batch["i"] = 0
            if y is not None:
                labels = self._labels(X)
                metrics.log(**self._log_metrics(labels, y))
                self.net_.train()
            return False

        self.net_.train()
        epoch_history = train(
            step, optimizer, len(X), epochs=self.epochs, batch_size=self.batch_size, device=self.device_,
            generator=self._generator(2), after_epoch=after_epoch, desc="VaDE", show_progress=self.verbose,
            cuda_graph=True, modules=(self.net_,),
        )
        self.history_.update(epoch_history)
        self.history_.update(metrics)
        self.own_labels_ = self._labels(X)
        self.cluster_centers_ = self.means_.detach().cpu().numpy()
        self.labels_ = self.own_labels_
        self.final_mixture_ = None
        if self.final_mixture == "full":
            clock = time.perf_counter()
            self.final_mixture_ = self._refit_full_mixture(X)
            self.labels_ = self._predict(X)
            self.mixture_seconds_ += time.perf_counter() - clock

    def _refit_full_mixture(self, X: torch.Tensor) -> GaussianMixture:
        """A full-covariance mixture on the final embedding (all samples), started at VaDE's means.

        EM keeps VaDE's clusters as its start and only lets each one tilt and stretch: the
        correlations between embedding dimensions that the diagonal prior had to ignore.
        """
        Z = self._all_codes(self.autoencoder_, X)
        means, device = self.cluster_centers_.astype(np.float64), self._em_device()
        if device is not None:
            return dist.on_rank0(lambda: mixture.refitted_mixture(Z, means, device, self.random_state))
        return dist.on_rank0(lambda: GaussianMixture(
            self.n_clusters, covariance_type="full", random_state=self.random_state, means_init=means).fit(Z))

    @staticmethod
    def _all_codes(ae: Autoencoder, X: torch.Tensor) -> np.ndarray:
        """Every sample's code in float64, for scikit-learn; data parallel, each rank embeds its rows, then gather."""
        ae.eval()
        return dist.gather_embeddings(embed(ae.encode, dist.shard_rows(X))).cpu().numpy().astype(np.float64)

    # ------------------------------------------------------------------ inference
    def _proba(self, X: torch.Tensor) -> np.ndarray:
        """The cluster posteriors that give the labels: VaDE's γ, or the refitted full mixture's."""
        if getattr(self, "final_mixture_", None) is not None:  # None, or absent in a model saved before the option
            return self.final_mixture_.predict_proba(self.transform(X).astype(np.float64))
        return self._responsibilities(X).cpu().numpy()

    def _predict(self, X: torch.Tensor) -> np.ndarray:
        return self._proba(X).argmax(1).astype(np.int64)

    def predict_proba(self, X) -> np.ndarray:
        """γ = p(c | z) at the mean of q(z|x) (or the refitted full mixture's posterior); rows sum to 1."""
        return self._proba(self._check_X_predict(X))

    @torch.no_grad()
    def sample(self, n: int, cluster: int | None = None, return_clusters: bool = False):
        """Generate ``n`` samples: c ~ π (or the given ``cluster``), z ~ N(μ_c, σ_c²), x = E[x|z].

        Returns an array shaped like the training samples, values in [0, 1] (and the clusters).
        """
        if not hasattr(self, "net_"):
            raise RuntimeError("This VaDE is not fitted yet; call fit(X) first.")
        if cluster is not None and not 0 <= int(cluster) < self.n_clusters:
            raise ValueError(f"cluster must be in [0, {self.n_clusters}), got {cluster}.")
        gen = torch.Generator(device=self.device_).manual_seed(0 if self.random_state is None else self.random_state)
        if cluster is None:
            c = torch.multinomial(self.weights_.detach(), n, replacement=True, generator=gen)
        else:
            c = torch.full((n,), int(cluster), device=self.device_)
        eps = torch.randn(n, self.means_.shape[1], generator=gen, device=self.device_)
        z = self.means_[c] + eps * torch.exp(0.5 * self.logvars_[c])
        self.net_.eval()
        images = torch.sigmoid(self.net_.decode(z)).reshape(n, *self.sample_shape_).cpu().numpy()
        return (images, c.cpu().numpy()) if return_clusters else images
