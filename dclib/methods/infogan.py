"""InfoGAN: a GAN whose generator must keep a categorical code recoverable from its images.

InfoGAN (Chen et al., 2016) plays the GAN game with a generator G(z, c) and adds the variational
lower bound of the mutual information between the code c and the image,

    min_{G,Q} max_D  V(D, G) − λ L_I(G, Q),   L_I = E_{c∼p(c), x∼G(z,c)}[log Q(c|x)] + H(c) ≤ I(c; x).

Q shares the discriminator's body. A K-way uniform code that Q can read back from the images is
a clustering of the generated images, and Q applied to real images clusters them:
labels = argmax_c Q(c|x). Derived in ``notebooks/10_adversarial_clustering.ipynb``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..gan_models import AdversarialClusterer, DCGANDiscriminator, DCGANGenerator
from ..losses import continuous_info_lower_bound, info_lower_bound

__all__ = ["InfoGAN"]


class InfoGAN(AdversarialClusterer):
    """InfoGAN for clustering images in [0, 1] (28×28 MNIST; any C×H×W with H, W multiples of 4).

    The code is a uniform K-way categorical (``n_clusters``) plus ``n_continuous`` codes
    U(−1, 1); the rest of the generator's input is ``noise_dim`` Gaussian noise. The paper's MNIST
    settings are kept where they matter — λ = 1 (``lambda_info``) for the categorical code and
    0.1 (``lambda_continuous``) for the continuous ones, Adam with β₁ = 0.5, lr 2e-4 for D and
    1e-3 for G and the Q head (trained with G, as in common implementations; the shared body
    learns with D) — with smaller DCGAN nets (``width``, ``hidden``) and spectral normalisation
    in D instead of batch norm (see the notebook for why). ``fit(X, y)`` uses ``y`` only to log
    ACC/NMI/ARI per epoch in ``history_``.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        noise_dim: int = 62,
        n_continuous: int = 2,
        epochs: int = 30,
        batch_size: int = 64,
        lr_g: float = 1e-3,
        lr_d: float = 2e-4,
        lambda_info: float = 1.0,
        lambda_continuous: float = 0.1,
        width: int = 16,
        hidden: int = 128,
        spectral_norm: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_clusters = n_clusters
        self.noise_dim = noise_dim
        self.n_continuous = n_continuous
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr_g = lr_g
        self.lr_d = lr_d
        self.lambda_info = lambda_info
        self.lambda_continuous = lambda_continuous
        self.width = width
        self.hidden = hidden
        self.spectral_norm = spectral_norm
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ codes and networks
    def _codes(self, n: int, gen: torch.Generator, cluster: int | None = None):
        """(generator input, categorical codes, continuous codes) for n samples."""
        dev = self.device_
        if cluster is None:
            c = torch.randint(self.n_clusters, (n,), generator=gen, device=dev)
        else:
            c = torch.full((n,), cluster, dtype=torch.long, device=dev)
        cont = torch.rand(n, int(self.n_continuous), generator=gen, device=dev) * 2 - 1
        noise = torch.randn(n, int(self.noise_dim), generator=gen, device=dev)
        return torch.cat([noise, F.one_hot(c, self.n_clusters).float(), cont], dim=1), c, cont

    def _q(self, out: dict[str, torch.Tensor]):
        """Split Q's head into categorical logits, continuous means and log-variances."""
        q = out["q"]
        k, m = self.n_clusters, int(self.n_continuous)
        return q[:, :k], q[:, k:k + m], q[:, k + m:].clamp(-8.0, 8.0)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._q(self.discriminator_(x))[0]

    def _generate(self, n: int, cluster: int | None, gen: torch.Generator) -> torch.Tensor:
        return self.generator_(self._codes(n, gen, cluster)[0])

    def _info_terms(self, out, c, cont) -> tuple[torch.Tensor, torch.Tensor]:
        logits, mean, log_var = self._q(out)
        info_cat = info_lower_bound(logits, c)
        info_cont = (continuous_info_lower_bound(mean, log_var, cont) if int(self.n_continuous)
                     else torch.zeros((), device=logits.device))
        return info_cat, info_cont

    # ------------------------------------------------------------------ fit
    def _fit(self, X: torch.Tensor, y: np.ndarray | None) -> None:
        self._check_common(X)
        if int(self.n_continuous) < 0 or self.lambda_info < 0 or self.lambda_continuous < 0:
            raise ValueError(f"n_continuous, lambda_info and lambda_continuous must be >= 0, got "
                             f"{self.n_continuous!r}, {self.lambda_info!r}, {self.lambda_continuous!r}.")
        X = self._images(X)
        k, m = self.n_clusters, int(self.n_continuous)
        self.generator_ = DCGANGenerator(int(self.noise_dim) + k + m, self.image_shape_, self.width).to(self.device_)
        self.discriminator_ = DCGANDiscriminator(
            self.image_shape_, {"d": 1, "q": k + 2 * m}, self.width, self.hidden, self.spectral_norm
        ).to(self.device_)
        # D's body and real/fake head learn at lr_d; G and the Q head at lr_g (Q must follow G's codes)
        q_head = list(self.discriminator_.heads["q"].parameters())
        d_params = [p for name, p in self.discriminator_.named_parameters() if not name.startswith("heads.q.")]
        d_opt = torch.optim.Adam(d_params, lr=self.lr_d, betas=(0.5, 0.999))
        g_opt = torch.optim.Adam([*self.generator_.parameters(), *q_head], lr=self.lr_g, betas=(0.5, 0.999))
        gen = self._generator(2)
        lam, lam_cont = float(self.lambda_info), float(self.lambda_continuous)

        def d_step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            # D tells real from fake; Q (same body) learns to read the code back: both maximise L_I
            real = self.discriminator_(X[idx])
            z, c, cont = self._codes(len(idx), gen)
            fake = self.discriminator_(self.generator_(z).detach())
            adv = (F.binary_cross_entropy_with_logits(real["d"], torch.ones_like(real["d"]))
                   + F.binary_cross_entropy_with_logits(fake["d"], torch.zeros_like(fake["d"])))
            info_cat, info_cont = self._info_terms(fake, c, cont)
            return {"loss": adv - lam * info_cat - lam_cont * info_cont, "d_adv": adv}

        def g_step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            # non-saturating generator loss −log D(G(z, c)), plus the same information term
            z, c, cont = self._codes(len(idx), gen)
            fake = self.discriminator_(self.generator_(z))
            adv = F.binary_cross_entropy_with_logits(fake["d"], torch.ones_like(fake["d"]))
            info_cat, info_cont = self._info_terms(fake, c, cont)
            return {"loss": adv - lam * info_cat - lam_cont * info_cont, "g_adv": adv,
                    "info_cat": info_cat, "info_cont": info_cont}

        self._train(d_step, g_step, d_opt, g_opt, X, y, gen)
