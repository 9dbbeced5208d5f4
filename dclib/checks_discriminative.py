"""Auto-checks for lab 08: IMSAT's two entropies and VAT's power iteration
(``solutions/lab08_imsat.ipynb``), DAC's pair selection and pairwise loss (``solutions/lab08_dac.ipynb``).

Same contract as ``dclib.checks``: each check runs the learner's function on known cases, prints
✓ or ✗ with a hint, and returns True/False. References are the library's functions in
``dclib.losses`` and, independently of them, brute force (explicit loops, the exact Hessian).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checks import _close, _expect, _run

__all__ = [
    "check_marginal_entropy",
    "check_conditional_entropy",
    "check_vat_direction",
    "check_dac_pair_labels",
    "check_dac_loss",
    "brute_force_vat_eigvec",
    "HAND_SIM",
]


def _probs(n: int, K: int, seed: int, scale: float = 2.0, dtype=torch.float64) -> torch.Tensor:
    """Random soft assignments (n, K), rows on the simplex, none exactly 0."""
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(n, K, generator=g, dtype=torch.float64), 1).to(dtype)


def _onehot(labels, K: int) -> torch.Tensor:
    return F.one_hot(torch.as_tensor(labels), K).to(torch.float64)


def _scalar(out, name: str) -> torch.Tensor:
    _expect(isinstance(out, torch.Tensor), f"return a torch tensor (so gradients can flow), got {type(out).__name__}.")
    _expect(out.dim() == 0, f"return one number (a 0-dim tensor), got shape {tuple(out.shape)} — {name}.")
    return out


def _match_hint(got: float, variants: dict[str, float], default: str) -> str:
    for hint, value in variants.items():
        if math.isfinite(value) and abs(got - value) < 1e-6 * max(1.0, abs(value)):
            return hint
    return default


# ----------------------------------------------------------------------------- entropies (lab08_imsat)


def _brute_entropies(p) -> tuple[float, float]:
    """(H(Y), H(Y|X)) with explicit loops in numpy float64, 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    n, K = p.shape
    mean = [sum(p[i, k] for i in range(n)) / n for k in range(K)]
    h_marg = -sum(m * math.log(m) for m in mean if m > 0)
    h_cond = -sum(p[i, k] * math.log(p[i, k]) for i in range(n) for k in range(K) if p[i, k] > 0) / n
    return h_marg, h_cond


def _entropy_variants(p: torch.Tensor, which: str) -> dict[str, float]:
    """What typical mistakes compute on p (no zeros), keyed by their hint."""
    n = len(p)
    mean, total = p.mean(0), p.sum(0)
    h_marg = float(-(mean * mean.log()).sum())
    h_cond = float(-(p * p.log()).sum(1).mean())
    common = {"the log is base 2: the course uses natural logs (torch.log), so that the maximum is log K.":
              (h_marg if which == "marginal" else h_cond) / math.log(2)}
    if which == "marginal":
        return common | {
            "returns −H: entropy is −Σ p̄ log p̄ (≥ 0), flip the sign.": -h_marg,
            "that is the mean entropy of each row, H(Y|X): H(Y) is the entropy of the *averaged* prediction "
            "p̄ = p.mean(0) — average first, then take the entropy.": h_cond,
            "p̄ must be the mean over the samples, p.mean(dim=0) (it sums to 1), not the sum p.sum(dim=0).":
                float(-(total * total.log()).sum()),
        }
    return common | {
        "returns −H(Y|X): entropy is −Σ p log p (≥ 0), flip the sign.": -h_cond,
        "that is the entropy of the mean prediction, H(Y): H(Y|X) is the *mean over i* of each row's "
        "entropy, −1/n Σ_i Σ_k p_ik log p_ik.": h_marg,
        "that is the sum over the samples: H(Y|X) is the mean, divide by n (or use .mean()).": h_cond * n,
        "the mean runs over all n·K entries: sum over k first (dim=1), then average over the samples i.":
            h_cond / p.shape[1],
    }


def _check_entropy(fn: Callable, which: str) -> bool:
    from .losses import conditional_entropy, marginal_entropy

    name = f"check_{which}_entropy"
    ref = marginal_entropy if which == "marginal" else conditional_entropy
    formula = ("H(Y) = −Σ_k p̄_k log p̄_k with p̄ = p.mean(dim=0)" if which == "marginal"
               else "H(Y|X) = −1/n Σ_i Σ_k p_ik log p_ik")
    index = 0 if which == "marginal" else 1

    def value(p: torch.Tensor) -> torch.Tensor:
        return _scalar(fn(p), "sum over the clusters" + (" and average over the samples" if index else ""))

    def brute_force():
        for seed, (n, K) in enumerate([(12, 3), (30, 5), (7, 10)]):
            p = _probs(n, K, seed)
            got = float(value(p))
            expected = _brute_entropies(p)[index]
            _expect(abs(got - expected) < 1e-9, f"(n={n}, K={K}) got {got:.6f}, expected {expected:.6f} — "
                    + _match_hint(got, _entropy_variants(p, which), f"wrong value; {formula}."))

    def hand_values():
        for K in (2, 5, 10):
            uniform = torch.full((6, K), 1.0 / K, dtype=torch.float64)
            got = float(value(uniform))
            _expect(abs(got - math.log(K)) < 1e-9, f"uniform predictions (every p_ik = 1/{K}) must give log K = "
                    f"{math.log(K):.4f}, got {got:.4f}.")
        p = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)  # p̄ = (0.7, 0.3)
        expected = (-(0.7 * math.log(0.7) + 0.3 * math.log(0.3)) if index == 0
                    else (math.log(2) - 0.9 * math.log(0.9) - 0.1 * math.log(0.1)) / 2)
        got = float(value(p))
        _expect(abs(got - expected) < 1e-9, f"p = [[0.5, 0.5], [0.9, 0.1]]: expected {expected:.6f} ({formula}), "
                f"got {got:.6f} — " + _match_hint(got, _entropy_variants(p, which), "check the formula."))

    def one_hot_rows():
        balanced, collapsed = _onehot(np.arange(12) % 4, 4), _onehot(np.zeros(12, dtype=int), 4)
        for p, expected, what in ([(balanced, math.log(4), "balanced one-hot clusters"),
                                   (collapsed, 0.0, "everything in cluster 0")] if index == 0 else
                                  [(balanced, 0.0, "confident one-hot rows"), (collapsed, 0.0, "confident rows")]):
            got = float(value(p))
            _expect(math.isfinite(got), f"{what} give NaN: some probabilities are exactly 0 and 0·log 0 = 0·(−inf) = "
                    "NaN in floating point — use torch.xlogy(p, p) (which defines 0·log 0 = 0) or clamp p before "
                    "the log (p.clamp_min(1e-12).log()).")
            _expect(abs(got - expected) < 1e-6, f"{what}: expected {expected:.4f}, got {got:.4f}.")

    def float32_and_gradients():
        logits = torch.randn(9, 4, generator=torch.Generator().manual_seed(3), requires_grad=True)
        out = value(torch.softmax(logits, 1))
        _expect(out.dtype == torch.float32, f"float32 input must give a float32 result, got {out.dtype}.")
        _expect(out.requires_grad, "the result does not carry gradients — use torch operations only (no .numpy(), "
                ".detach(), .item() or torch.tensor(...) of a result).")
        (mine,) = torch.autograd.grad(out, logits)
        (expected,) = torch.autograd.grad(ref(torch.softmax(logits, 1)), logits)
        _expect(_close(mine, expected, 1e-4), "the value is right but the gradient is not — is part of the "
                "computation detached?")

    return _run(name, [("brute force on random predictions", brute_force),
                       ("hand values (uniform → log K, a 2×2 case)", hand_values),
                       ("one-hot rows (exact zeros)", one_hot_rows),
                       ("float32 and gradients", float32_and_gradients)])


def check_marginal_entropy(fn: Callable) -> bool:
    """``fn(p) -> H(Y)``: −Σ_k p̄_k log p̄_k, p̄ = 1/n Σ_i p_i, a 0-dim tensor (0 log 0 = 0)."""
    return _check_entropy(fn, "marginal")


def check_conditional_entropy(fn: Callable) -> bool:
    """``fn(p) -> H(Y|X)``: −1/n Σ_i Σ_k p_ik log p_ik, a 0-dim tensor (0 log 0 = 0)."""
    return _check_entropy(fn, "conditional")


# ----------------------------------------------------------------------------- VAT (lab08_imsat)


class _Flatten(nn.Module):
    """A small logits model on (n, 1, 2, 3) 'images': flatten, tanh layer, linear logits (float64)."""

    def __init__(self, seed: int, d: int = 6, hidden: int = 8, K: int = 4):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, K)).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3.0 * self.net(x)


def _linear_model(seed: int, d: int = 5, K: int = 3) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = nn.Linear(d, K).double()
    with torch.no_grad():
        model.weight.copy_(2 * torch.randn(K, d, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(K, generator=g, dtype=torch.float64))
    return model


def brute_force_vat_eigvec(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(top eigenvectors (n, d), eigenvalues (n, d) ascending) of each sample's Hessian of
    r ↦ KL(p(x_i) ‖ p(x_i + r)) at r = 0, by autograd's exact Hessian (float64, flat inputs)."""
    vecs, vals = [], []
    for x_i in x:
        with torch.no_grad():
            log_p = torch.log_softmax(model(x_i[None]), 1)

        def kl(r, x_i=x_i, log_p=log_p):
            return (log_p.exp() * (log_p - torch.log_softmax(model((x_i + r)[None]), 1))).sum()

        H = torch.autograd.functional.hessian(kl, torch.zeros_like(x_i))
        w, v = torch.linalg.eigh(H.reshape(x_i.numel(), x_i.numel()))
        vecs.append(v[:, -1])
        vals.append(w)
    return torch.stack(vecs), torch.stack(vals)


def _vat_cases():
    """(description, model, x, seed of d0, xi, n_power) with d0 = randn(x.shape) from that seed."""
    lin = _linear_model(0)
    x_lin = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    img = _Flatten(2)
    x_img = torch.randn(5, 1, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return [("a linear-softmax model, one step, xi = 0.5", lin, x_lin, 10, 0.5, 1),
            ("a linear-softmax model, three steps, xi = 0.5", lin, x_lin, 11, 0.5, 3),
            ("a tanh network on (n, 1, 2, 3) images, two steps, xi = 1.0", img, x_img, 12, 1.0, 2),
            ("a tanh network, one step, a different xi per sample", img, x_img, 13,
             torch.tensor([0.2, 0.5, 1.0, 2.0, 0.1], dtype=torch.float64), 1)]


def _d0(x: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)


def _vat_hint(got: torch.Tensor, model, x, d0, xi, n_power) -> str:
    from .losses import _kl_logits, _unit

    xi_t = torch.as_tensor(xi, dtype=x.dtype)
    xi_t = xi_t.reshape(-1, *([1] * (x.dim() - 1))) if xi_t.dim() == 1 else xi_t
    with torch.no_grad():
        log_p = torch.log_softmax(model(x), 1)

    def step(d, unit, reverse=False, start_unit=True):
        d = _unit(d) if start_unit else d
        for _ in range(n_power):
            d = d.detach().requires_grad_(True)
            logits = model(x + xi_t * d)
            if reverse:
                log_q = torch.log_softmax(logits, 1)
                kl = (log_q.exp() * (log_q - log_p)).sum()
            else:
                kl = _kl_logits(log_p, logits).sum()
            (g,) = torch.autograd.grad(kl, d)
            d = unit(g)
        return d.detach()

    def batch_unit(g):
        return g / g.norm()

    def row_unit(g):
        return g / g.norm(dim=1, keepdim=True)

    variants = [
        ("the direction is normalised over the whole batch: each sample's d_i must have unit norm on its own "
         "(the norm over all dimensions except the first, e.g. g.flatten(1).norm(dim=1)).",
         lambda: step(d0, batch_unit)),
        ("the norm runs over dim=1 only: for images (n, C, H, W) each sample's norm covers all its pixels — "
         "flatten the non-batch dimensions first (g.flatten(1).norm(dim=1)), then reshape.",
         lambda: step(d0, row_unit)),
        ("the gradient is returned without normalising it: d ← g / ‖g‖ per sample.",
         lambda: step(d0, lambda g: g)),
        ("d0 is not normalised before the first step: the first perturbation must be ξ · d0/‖d0‖.",
         lambda: step(d0, _unit, start_unit=False)),
        ("that is the KL in the other direction, KL(p(x + ξd) ‖ p(x)): VAT keeps the clean prediction as the "
         "reference, KL(p(x) ‖ p(x + ξd)) = Σ_k p_k (log p_k − log p̃_k).", lambda: step(d0, _unit, reverse=True)),
    ]
    for hint, compute in variants:
        try:
            if x.dim() == 2 and "dim=1 only" in hint:
                continue
            if _close(got, compute(), 1e-6):
                return hint
        except Exception:  # a variant that does not apply to this shape
            continue
    if _close(got, -step(d0, _unit), 1e-6):
        return "the direction has the wrong sign: d ← +∇_r KL (the ascent direction), normalised."
    if n_power > 1 and _close(got, _vat_one_step(model, x, d0, xi_t)):
        return "n_power is ignored: repeat the gradient step n_power times, each from the last d."
    return ("wrong direction — d ← d0/‖d0‖, then n_power times: d ← ∇_d KL(p(x) ‖ p(x + ξ d)) (sum of the "
            "per-sample KLs), normalised per sample.")


def _vat_one_step(model, x, d0, xi_t):
    from .losses import _kl_logits, _unit

    with torch.no_grad():
        log_p = torch.log_softmax(model(x), 1)
    d = _unit(d0).requires_grad_(True)
    (g,) = torch.autograd.grad(_kl_logits(log_p, model(x + xi_t * d)).sum(), d)
    return _unit(g)


def check_vat_direction(fn: Callable) -> bool:
    """``fn(model, x, d0, xi, n_power) -> d``: VAT's power iteration from the random start ``d0``.

    d ← d0/‖d0‖ per sample, then ``n_power`` times d ← ∇_d Σ_i KL(p(x_i) ‖ p(x_i + ξ d_i)), normalised
    per sample; ``model`` maps x to logits; ``xi`` a number or one per sample.
    """
    from .losses import vat_direction

    def run(model, x, d0, xi, n_power) -> torch.Tensor:
        out = fn(model, x, d0.clone(), xi, n_power)
        _expect(isinstance(out, torch.Tensor), f"return a torch tensor, got {type(out).__name__}.")
        _expect(tuple(out.shape) == tuple(x.shape), f"d must have the shape of x {tuple(x.shape)}, got "
                f"{tuple(out.shape)}.")
        _expect(bool(torch.isfinite(out).all()), "d has NaN/inf entries.")
        return out.detach()

    def unit_norm():
        for _, model, x, seed, xi, n_power in _vat_cases():
            d = run(model, x, _d0(x, seed), xi, n_power)
            norms = d.reshape(len(d), -1).norm(dim=1)
            if not _close(norms, torch.ones_like(norms)):
                _expect(False, _vat_hint(d, model, x, _d0(x, seed), xi, n_power))

    def against_library():
        for what, model, x, seed, xi, n_power in _vat_cases():
            d = run(model, x, _d0(x, seed), xi, n_power)
            # the library draws its start from the generator: seeded like d0, it draws the same d0
            expected = vat_direction(model, x, xi, n_power, generator=torch.Generator().manual_seed(seed))
            _expect(_close(d, expected, 1e-6), f"({what}) " + _vat_hint(d, model, x, _d0(x, seed), xi, n_power))

    def dominant_eigenvector():
        model = _linear_model(4, d=5, K=3)
        x = torch.randn(8, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        vecs, vals = brute_force_vat_eigvec(model, x)
        d = run(model, x, _d0(x, 6), 1e-4, 40)
        cos = (d * vecs).sum(1).abs()
        gap = vals[:, -2] / vals[:, -1]
        _expect(bool((cos[gap < 0.8] > 0.999).all()), "after 40 power steps d must align with the top eigenvector "
                f"of the Hessian of the KL (|cos| ≈ 1), got |cos| = {np.round(cos.numpy(), 3).tolist()} — "
                "is the gradient taken with respect to d (not x), normalised per sample, and repeated n_power times?")

    def does_not_touch_the_model():
        model = _linear_model(7)
        x = torch.randn(4, 5, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
        before = [p.detach().clone() for p in model.parameters()]
        run(model, x, _d0(x, 9), 0.5, 2)
        _expect(all(p.grad is None or not p.grad.any() for p in model.parameters()),
                "the model's parameters received gradients: take the gradient with respect to d only, "
                "torch.autograd.grad(kl, d), not kl.backward().")
        _expect(all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True)),
                "the model's parameters changed.")

    return _run("check_vat_direction", [("unit norm per sample", unit_norm),
                                         ("the library's vat_direction from the same start", against_library),
                                         ("the exact Hessian's top eigenvector (40 steps)", dominant_eigenvector),
                                         ("no gradients left on the model", does_not_touch_the_model)])


# ----------------------------------------------------------------------------- DAC (lab08_dac)

# A hand-made similarity matrix of 6 images: {0, 1, 2} look alike, {3, 4} too, 5 is in between.
HAND_SIM = torch.tensor([
    [1.00, 0.97, 0.92, 0.10, 0.05, 0.50],
    [0.97, 1.00, 0.95, 0.20, 0.15, 0.60],
    [0.92, 0.95, 1.00, 0.30, 0.40, 0.70],
    [0.10, 0.20, 0.30, 1.00, 0.99, 0.45],
    [0.05, 0.15, 0.40, 0.99, 1.00, 0.46],
    [0.50, 0.60, 0.70, 0.45, 0.46, 1.00],
], dtype=torch.float64)


def _brute_pairs(sim, upper: float, lower: float) -> tuple[np.ndarray, np.ndarray]:
    sim = np.asarray(sim, dtype=np.float64)
    n = len(sim)
    target, selected = np.zeros((n, n)), np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            if i != j and sim[i, j] > upper:
                target[i, j], selected[i, j] = 1.0, True
            elif i != j and sim[i, j] < lower:
                selected[i, j] = True
    return target, selected


def _pairs_out(out, n: int):
    _expect(isinstance(out, tuple | list) and len(out) == 2, "return a pair (target, selected).")
    target, selected = out
    for name, t in (("target", target), ("selected", selected)):
        _expect(isinstance(t, torch.Tensor), f"{name} must be a torch tensor, got {type(t).__name__}.")
        _expect(tuple(t.shape) == (n, n), f"{name} must be (n, n) = ({n}, {n}), got {tuple(t.shape)}.")
    _expect(selected.dtype == torch.bool, f"selected must be a boolean mask (dtype torch.bool), got {selected.dtype} — "
            "e.g. (sim > upper) | (sim < lower).")
    _expect(target.is_floating_point(), f"target must hold 0.0/1.0 floats (it enters the loss), got {target.dtype} — "
            "convert with .to(sim.dtype).")
    return target, selected


def _same_pairs(target, selected, exp_t, exp_v) -> bool:
    """Same mask, and the same labels on the selected pairs (labels elsewhere are not used)."""
    return np.array_equal(selected.numpy(), exp_v) and np.array_equal(target.detach().numpy()[exp_v], exp_t[exp_v])


def _pairs_hint(target, selected, sim, upper, lower) -> str:
    t, v = target.detach().numpy(), selected.numpy()
    exp_t, exp_v = _brute_pairs(sim, upper, lower)
    s = np.asarray(sim)
    diag = np.eye(len(s), dtype=bool)
    if v[diag].any():
        return "the diagonal is selected: a point paired with itself tells nothing (g_ii = 1 always) — remove it " \
               "with ~torch.eye(n, dtype=torch.bool)."
    if np.array_equal(v, exp_v) and not np.array_equal(t[exp_v], exp_t[exp_v]):
        if np.array_equal(t[exp_v], 1 - exp_t[exp_v]):
            return "the labels are swapped: r_ij = 1 means *similar* (g_ij > u), 0 dissimilar (g_ij < l)."
        return "the mask is right but the labels are not: r_ij = 1 where g_ij > u, 0 elsewhere."
    if np.array_equal(v, exp_v & (s > upper)):
        return "only the similar pairs are selected: the dissimilar ones (g_ij < l) are selected too, with label 0."
    if np.array_equal(v, exp_v | (~diag & ((s == upper) | (s == lower)))):
        return "a pair exactly on a threshold is selected: the inequalities are strict, g_ij > u and g_ij < l."
    if np.array_equal(v, ~diag & (s > lower) & (s < upper)):
        return "the mask is inverted: it must select the *confident* pairs, g_ij > u or g_ij < l."
    return "wrong selection — r_ij = 1 if g_ij > u; v_ij = (g_ij > u or g_ij < l) and i ≠ j."


def check_dac_pair_labels(fn: Callable) -> bool:
    """``fn(sim, upper, lower) -> (target, selected)``: r_ij = 1 if g_ij > u else 0; v_ij = (g_ij > u or
    g_ij < l) and i ≠ j (a boolean mask); pairs between the thresholds are left out."""

    def hand_made():
        for upper, lower in [(0.9, 0.3), (0.95, 0.455), (0.7, 0.5)]:
            target, selected = _pairs_out(fn(HAND_SIM.clone(), upper, lower), 6)
            exp_t, exp_v = _brute_pairs(HAND_SIM, upper, lower)
            _expect(_same_pairs(target, selected, exp_t, exp_v),
                    f"(u={upper}, l={lower}) " + _pairs_hint(target, selected, HAND_SIM, upper, lower))

    def hand_counts():
        target, selected = _pairs_out(fn(HAND_SIM.clone(), 0.9, 0.3), 6)
        # similar: (0,1), (0,2), (1,2), (3,4) both ways; dissimilar: 0-3, 0-4, 1-3, 1-4 both ways
        _expect(int(selected.sum()) == 16 and int(target[selected].sum()) == 8,
                f"with u = 0.9, l = 0.3 the hand-made matrix has 8 similar and 8 dissimilar ordered pairs; got "
                f"{int(target[selected].sum())} similar of {int(selected.sum())} selected.")

    def boundaries():
        sim = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]], dtype=torch.float64)
        target, selected = _pairs_out(fn(sim, 0.8, 0.3), 3)
        _expect(not bool(selected.any()), _pairs_hint(target, selected, sim, 0.8, 0.3))

    def random_and_no_gradient():
        p = _probs(20, 4, 0, scale=3.0)
        unit = p / p.norm(dim=1, keepdim=True)
        sim = (unit @ unit.t()).requires_grad_(True)
        target, selected = _pairs_out(fn(sim, 0.8, 0.4), 20)
        exp_t, exp_v = _brute_pairs(sim.detach(), 0.8, 0.4)
        _expect(_same_pairs(target, selected, exp_t, exp_v), _pairs_hint(target, selected, sim.detach(), 0.8, 0.4))

    return _run("check_dac_pair_labels", [("a hand-made 6×6 similarity matrix", hand_made),
                                           ("the hand-made counts", hand_counts),
                                           ("pairs exactly on a threshold", boundaries),
                                           ("random similarities", random_and_no_gradient)])


def _brute_dac_loss(p, upper: float, lower: float) -> float:
    """The mean over selected pairs of the binary cross-entropy, with loops (numpy float64)."""
    p = np.asarray(p, dtype=np.float64)
    unit = p / np.linalg.norm(p, axis=1, keepdims=True)
    sim = unit @ unit.T
    target, selected = _brute_pairs(sim, upper, lower)
    terms = [-math.log(sim[i, j]) if target[i, j] else -math.log1p(-sim[i, j])
             for i in range(len(p)) for j in range(len(p)) if selected[i, j]]
    return sum(terms) / len(terms) if terms else 0.0


def _dac_variants(p: torch.Tensor, upper: float, lower: float) -> dict[str, float]:
    unit = p / p.norm(dim=1, keepdim=True)
    sim = unit @ unit.t()
    pos, neg = sim > upper, sim < lower
    off = ~torch.eye(len(p), dtype=torch.bool)
    v = (pos | neg) & off
    bce = torch.where(pos, -sim.clamp_min(1e-300).log(), -torch.log1p(-sim.clamp_max(1 - 1e-16)))
    raw = p @ p.t()
    raw_pos, raw_neg = (raw > upper) & off, (raw < lower) & off
    raw_bce = torch.where(raw_pos, -raw.clamp_min(1e-300).log(), -torch.log1p(-raw.clamp_max(1 - 1e-16)))
    v_diag = pos | neg
    return {
        "that is the sum over the selected pairs: the loss is their *mean* (divide by the number of selected "
        "pairs), so that its scale does not change as λ selects more pairs.": float(bce[v].sum()),
        "the mean runs over all n² pairs: divide by the number of *selected* pairs (selected.sum()), the others "
        "are not in the loss.": float(bce[v].sum() / len(p) ** 2),
        "the similarity must be the dot product of the *normalised* predictions, l_i = p_i / ‖p_i‖ "
        "(F.normalize(p, dim=1)); p @ p.T of softmax outputs is not 1 for identical predictions.":
            float(raw_bce[raw_pos | raw_neg].mean()) if bool((raw_pos | raw_neg).any()) else float("nan"),
        "the diagonal is counted: a point with itself (g_ii = 1) is not a pair — use your pair-selection "
        "function, which removes it.": float(bce[v_diag].mean()),
        "returns minus the loss: the binary cross-entropy −r log g − (1 − r) log(1 − g) is ≥ 0.":
            -float(bce[v].mean()),
    }


# Clipping g to [1e-7, 1 − 1e-7] before the logs (as Keras' binary cross-entropy, the library's dac_loss)
# moves the loss by at most ~1e-7 per pair: accepted, the plausible mistakes are far larger.
_DAC_TOL = 1e-6


def check_dac_loss(fn: Callable) -> bool:
    """``fn(p, upper, lower) -> loss``: the mean over the selected pairs (i ≠ j, g > u or g < l) of
    −r_ij log g_ij − (1 − r_ij) log(1 − g_ij), g the cosine of the rows of p; 0 if none is selected."""
    from .losses import dac_loss

    def value(p, upper, lower) -> torch.Tensor:
        out = _scalar(fn(p, upper, lower), "a mean over the selected pairs")
        _expect(bool(torch.isfinite(out)), "the loss is NaN/inf: in −r log g − (1 − r) log(1 − g) a "
                "dissimilar pair with g = 0 gives 0 · log 0 = NaN (and a similar one with g = 1 gives 0 · log 0 "
                "too) — compute each term only on its own pairs (sim[positive], sim[negative]), or use "
                "F.binary_cross_entropy, which clamps the log.")
        return out

    def by_hand():
        # rows: two identical, one orthogonal to them, one in between
        p = torch.tensor([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.0, 0.2, 0.8], [0.5, 0.4, 0.1]], dtype=torch.float64)
        for upper, lower in [(0.9, 0.3), (0.95, 0.455), (0.6, 0.5)]:
            got = float(value(p, upper, lower))
            expected = _brute_dac_loss(p, upper, lower)
            _expect(abs(got - expected) < _DAC_TOL, f"(u={upper}, l={lower}) got {got:.6f}, expected {expected:.6f} — "
                    + _match_hint(got, _dac_variants(p, upper, lower), "wrong value: the mean over selected pairs "
                                  "of −r log g − (1 − r) log(1 − g)."))

    def random_cases():
        for seed, (n, K) in enumerate([(16, 4), (25, 10)]):
            p = _probs(n, K, 20 + seed, scale=3.0)
            got = float(value(p, 0.8, 0.3))
            expected = _brute_dac_loss(p, 0.8, 0.3)
            _expect(abs(got - expected) < _DAC_TOL, f"(n={n}, K={K}) got {got:.6f}, expected {expected:.6f} — "
                    + _match_hint(got, _dac_variants(p, 0.8, 0.3), "wrong value."))

    def exact_zeros_and_ones():
        p = _onehot([0, 0, 1, 2, 2], 3)  # g is exactly 1 (same cluster) or exactly 0 (different)
        got = float(value(p, 0.9, 0.2))
        _expect(abs(got) < _DAC_TOL, f"perfectly separated one-hot predictions must give a loss of 0, got {got:.6f}.")

    def nothing_selected():
        p = torch.tensor([[0.7, 0.3], [0.3, 0.7]], dtype=torch.float64)  # g = 0.724…, between l and u
        out = fn(p, 0.95, 0.455)
        _expect(not (isinstance(out, torch.Tensor) and bool(torch.isnan(out).any())), "when no pair is selected "
                "the loss is NaN — a mean over an empty set is 0/0: divide by selected.sum().clamp_min(1) (the loss is "
                "then 0, nothing to learn from).")
        got = float(value(p, 0.95, 0.455))
        _expect(abs(got) < 1e-12, "when no pair is selected the loss must be 0 (nothing to learn from), got "
                f"{got} — a mean over an empty set is NaN: divide by selected.sum().clamp_min(1).")

    def gradients():
        logits = torch.randn(12, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64,
                             requires_grad=True)
        out = value(torch.softmax(3 * logits, 1), 0.8, 0.3)
        _expect(out.requires_grad, "the loss does not carry gradients — use torch operations only.")
        (mine,) = torch.autograd.grad(out, logits)
        (expected,) = torch.autograd.grad(dac_loss(torch.softmax(3 * logits, 1), 0.8, 0.3), logits)
        _expect(_close(mine, expected), "the value is right but the gradient is not — the similarity g must "
                "keep its gradient (only the labels and the mask are fixed).")

    return _run("check_dac_loss", [("a 4-point case by hand", by_hand), ("random predictions", random_cases),
                                    ("one-hot predictions (g exactly 0 or 1)", exact_zeros_and_ones),
                                    ("no pair selected", nothing_selected),
                                    ("gradients against the library", gradients)])
