"""The one training loop every method plugs its loss into, autoencoder pretraining and its cache.

Lessons: ``notebooks/01_baselines_autoencoders.ipynb`` (pretraining) and
``notebooks/03_dec_training.ipynb`` (the loop with a periodic target update).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed as dist
from .data import minibatches
from .models import Autoencoder, MLPAutoencoder
from .utils import cache_dir, progress

__all__ = [
    "History",
    "train",
    "embed",
    "train_graphed",
    "pretrain_end_to_end",
    "pretrain_greedy",
    "pretrain_autoencoder",
]

StepFn = Callable[[torch.Tensor], "torch.Tensor | dict[str, torch.Tensor]"]


class History(dict):
    """Columns of logged numbers, e.g. ``history["loss"][epoch]``; plots straight from it."""

    def log(self, **values: float) -> None:
        for key, value in values.items():
            self.setdefault(key, []).append(float(value))

    def last(self, key: str) -> float:
        return self[key][-1]


def _terms(out: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return out if isinstance(out, dict) else {"loss": out}


def _eager_step(
    step: StepFn, optimizer: torch.optim.Optimizer, idx: torch.Tensor, weight: float | None = None
) -> dict[str, torch.Tensor]:
    """One optimiser step on the batch ``idx``; returns the step's terms ({"loss": ...} at least).

    In a distributed run the loss is scaled by ``weight`` (see ``distributed.shard_weight``)
    and the gradients are averaged over ranks before the step; in one process neither happens.
    """
    terms = _terms(step(idx))
    optimizer.zero_grad(set_to_none=True)
    (terms["loss"] if weight is None else terms["loss"] * weight).backward()
    if dist.is_distributed():
        dist.average_gradients(p for group in optimizer.param_groups for p in group["params"])
    optimizer.step()
    return terms


def _accumulate(totals: dict[str, torch.Tensor], terms: dict[str, torch.Tensor], n: int) -> None:
    """Add a batch's terms (weighted by its size) to the epoch sums, on the device: no host sync."""
    for key, value in terms.items():
        value = value.detach() * n
        totals[key] = totals[key] + value if key in totals else value


def _epoch_means(totals: dict[str, torch.Tensor], seen: int, desc: str, epoch: int) -> dict[str, float]:
    """The epoch's mean of each term (the one host sync per epoch), refusing NaN/inf."""
    means = {key: float(total) / seen for key, total in totals.items()}
    if not all(math.isfinite(v) for v in means.values()):
        raise FloatingPointError(
            f"{desc}: the loss became {means} at epoch {epoch}. Lower the learning rate, "
            "check the input for extreme values, or use a smaller alpha/batch."
        )
    return means


def train(
    step: StepFn,
    optimizer: torch.optim.Optimizer,
    n_samples: int,
    *,
    epochs: int,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    before_batch: Callable[[int], bool] | None = None,
    after_epoch: Callable[[int, dict[str, float]], bool] | None = None,
    max_iter: int | None = None,
    desc: str = "training",
    show_progress: bool = True,
    history: History | None = None,
    drop_last: bool = False,
    sample_mean: bool = True,
) -> History:
    """Run ``epochs`` passes of mini-batch optimisation of ``step(indices)``.

    ``step`` receives the indices of a batch (on ``device``) and returns the loss, or a dict with
    ``"loss"`` and any extra terms to log. The loop owns the batching, the optimiser step, the
    history (epoch means) and NaN detection. Losses are summed on the device and read once per
    epoch, so there is no host sync inside the inner loop.

    ``before_batch(iteration)`` may return True to stop (DEC's convergence test uses it);
    ``after_epoch(epoch, means)`` may return True to stop as well. ``drop_last=True`` skips an
    epoch's last, smaller batch (networks with batch norm cannot train on a batch of one sample).

    Data parallel (``torchrun``, see ``dclib.distributed``): every rank draws the same global
    batches, ``step`` gets this rank's share of each, the gradients are averaged over ranks and the
    logged means are global. ``sample_mean=True`` says the loss is a mean over the batch's samples
    (re-weighted per rank so that uneven shards still give the global mean); a step whose loss is
    already computed from statistics reduced over ranks (IIC's joint) passes False. A last batch
    smaller than the number of ranks is skipped (some rank would get no sample).
    """
    history = History() if history is None else history
    distributed = dist.is_distributed()
    batches = generator
    if distributed:
        dist.broadcast_parameters(p for group in optimizer.param_groups for p in group["params"])
        batches = dist.batch_generator(generator, device)
    iteration = 0
    bar = progress(range(epochs), enabled=show_progress, desc=desc)
    for epoch in bar:
        totals: dict[str, torch.Tensor] = {}
        seen = 0
        stop = False
        for idx in minibatches(n_samples, batch_size, generator=batches, device=device, drop_last=drop_last):
            if distributed and len(idx) < dist.world_size():
                continue
            if before_batch is not None and before_batch(iteration):
                stop = True
                break
            if distributed:
                local = dist.shard_batch(idx)
                weight = dist.shard_weight(len(local), len(idx)) if sample_mean else None
                _accumulate(totals, _eager_step(step, optimizer, local, weight), len(local))
                seen += len(local)
            else:
                _accumulate(totals, _eager_step(step, optimizer, idx), len(idx))
                seen += len(idx)
            iteration += 1
            if max_iter is not None and iteration >= max_iter:
                stop = True
                break
        if distributed:  # global epoch means: one all-reduce per epoch
            totals = {key: dist.all_sum(value) for key, value in totals.items()}
            seen = int(dist.all_sum(torch.tensor(seen, device=device)))
        if seen:
            means = _epoch_means(totals, seen, desc, epoch)
            history.log(epoch=epoch, iteration=iteration, **means)
            bar.set_postfix(loss=f"{means['loss']:.4f}")
            if after_epoch is not None and after_epoch(epoch, means):
                stop = True
        if stop:
            break
    bar.close()
    return history


def train_graphed(
    step: StepFn,
    optimizer: torch.optim.Optimizer,
    module: nn.Module,
    n_samples: int,
    *,
    epochs: int,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    desc: str = "training",
    show_progress: bool = True,
) -> History:
    """``train`` on a GPU with each full batch's step replayed from one captured CUDA graph.

    Why: the eager loop is launch-bound on a GPU — on an H200 a d-500-500-2000-10 autoencoder step
    costs ~2 ms of kernel launches for microseconds of arithmetic. Forward, backward and the
    optimiser step are captured once (``torch.cuda.graph``) and replayed with the batch indices
    copied into a static buffer. Same batches and the same maths as ``train``: the last, smaller
    batch of an epoch runs eagerly. ``step`` must keep no host-side state (pure in the batch), and
    the optimiser must be built with ``capturable=True``. ``module`` is restored after the
    warm-up steps the capture needs, and the optimiser's state is reset, so training starts from
    the given weights as a fresh optimiser would.
    """
    if device.type != "cuda":
        raise ValueError("train_graphed needs CUDA tensors; use train() on the CPU.")
    static_idx = torch.zeros(batch_size, dtype=torch.long, device=device)
    snapshot = {k: v.detach().clone() for k, v in module.state_dict().items()}
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):  # warm-up on a side stream, as graph capture requires
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            _terms(step(static_idx))["loss"].backward()
            optimizer.step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        captured = _terms(step(static_idx))
        captured["loss"].backward()
        optimizer.step()
    static_terms = {key: value.detach() for key, value in captured.items()}
    with torch.no_grad():  # undo the warm-up, in place (the graph holds these tensors' addresses)
        module.load_state_dict(snapshot)
        for state in optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()

    history = History()
    bar = progress(range(epochs), enabled=show_progress, desc=desc)
    iteration = 0
    for epoch in bar:
        totals: dict[str, torch.Tensor] = {}
        for idx in minibatches(n_samples, batch_size, generator=generator, device=device):
            if len(idx) == batch_size:
                static_idx.copy_(idx)
                graph.replay()
                terms = static_terms
            else:
                terms = _eager_step(step, optimizer, idx)
            _accumulate(totals, terms, len(idx))
            iteration += 1
        means = _epoch_means(totals, n_samples, desc, epoch)
        history.log(epoch=epoch, iteration=iteration, **means)
        bar.set_postfix(loss=f"{means['loss']:.4f}")
    bar.close()
    return history


@torch.no_grad()
def embed(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Apply ``fn`` to ``X`` in large no-grad batches (the whole dataset, on its device)."""
    return torch.cat([fn(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])


# ----------------------------------------------------------------------------- pretraining


RECON_LOSSES = {"mse": F.mse_loss, "bce": F.binary_cross_entropy_with_logits}


def pretrain_end_to_end(
    ae: Autoencoder,
    X: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    recon_loss: str = "mse",
    generator: torch.Generator | None = None,
    show_progress: bool = True,
) -> History:
    """Train the whole autoencoder with Adam on the reconstruction error.

    ``recon_loss="mse"`` (DEC, linear output) or ``"bce"`` (the decoder outputs Bernoulli
    logits, as VaDE's likelihood expects).
    """
    if recon_loss not in RECON_LOSSES:
        raise ValueError(f"recon_loss must be one of {sorted(RECON_LOSSES)}, got {recon_loss!r}.")
    loss_fn = RECON_LOSSES[recon_loss]
    graphed = (X.is_cuda and len(X) > batch_size and os.environ.get("DCLIB_CUDA_GRAPHS", "1") != "0"
               and not dist.is_distributed())
    optimizer = torch.optim.Adam(ae.parameters(), lr=lr, capturable=graphed)
    ae.train()

    def step(idx: torch.Tensor) -> torch.Tensor:
        x = X[idx]
        return loss_fn(ae(x), x)

    if graphed:  # same batches, same maths, without the per-kernel launch cost (DCLIB_CUDA_GRAPHS=0 turns it off)
        return train_graphed(step, optimizer, ae, len(X), epochs=epochs, batch_size=batch_size, device=X.device,
                             generator=generator, desc="pretrain (end-to-end)", show_progress=show_progress)
    return train(
        step, optimizer, len(X), epochs=epochs, batch_size=batch_size, device=X.device,
        generator=generator, desc="pretrain (end-to-end)", show_progress=show_progress,
    )


def pretrain_greedy(
    ae: MLPAutoencoder,
    X: torch.Tensor,
    *,
    layer_epochs: int,
    finetune_epochs: int,
    dropout: float = 0.2,
    batch_size: int = 256,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    show_progress: bool = True,
) -> History:
    """DEC's greedy layer-wise pretraining: one denoising autoencoder per layer, then fine-tuning.

    Layer pair ``i`` (encoder layer i with its mirrored decoder layer) learns to reconstruct its
    input ``h`` from a dropout-corrupted copy: ``h_hat = g2(W2 dropout(g1(W1 dropout(h))))``.
    Its clean output is the next pair's input. The stack is then fine-tuned end to end without
    corruption. Returns one history with a ``stage`` column (layer index, or -1 for fine-tuning).
    """
    if not isinstance(ae, MLPAutoencoder):
        raise ValueError("Greedy layer-wise pretraining needs an MLPAutoencoder; use 'end-to-end'.")
    n_layers = len(ae.encoder_layers)
    history = History()
    features = X.reshape(len(X), -1)
    ae.train()
    for i in range(n_layers):
        enc, dec = ae.encoder_layers[i], ae.decoder_layers[n_layers - 1 - i]
        enc_act = (lambda h: h) if i == n_layers - 1 else torch.relu  # the embedding is linear
        dec_act = (lambda h: h) if i == 0 else torch.relu  # the reconstruction is linear
        optimizer = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=lr)
        inputs = features

        def step(idx: torch.Tensor, inputs=inputs, enc=enc, dec=dec, enc_act=enc_act, dec_act=dec_act):
            h = inputs[idx]
            code = enc_act(enc(F.dropout(h, dropout, training=True)))
            recon = dec_act(dec(F.dropout(code, dropout, training=True)))
            return F.mse_loss(recon, h)

        layer_hist = train(
            step, optimizer, len(X), epochs=layer_epochs, batch_size=batch_size, device=X.device,
            generator=generator, desc=f"pretrain layer {i + 1}/{n_layers}", show_progress=show_progress,
        )
        for epoch, loss in zip(layer_hist.get("epoch", []), layer_hist.get("loss", []), strict=True):
            history.log(stage=i, epoch=epoch, loss=loss)
        with torch.no_grad():
            features = embed(lambda h, enc=enc, act=enc_act: act(enc(h)), inputs)
    fine = pretrain_end_to_end(
        ae, X, epochs=finetune_epochs, batch_size=batch_size, lr=lr, generator=generator,
        show_progress=show_progress,
    )
    for epoch, loss in zip(fine.get("epoch", []), fine.get("loss", []), strict=True):
        history.log(stage=-1, epoch=epoch, loss=loss)
    return history


def _fingerprint(X: torch.Tensor) -> str:
    data = X.detach().to("cpu", torch.float32).contiguous().numpy()
    digest = hashlib.sha1(data.tobytes())
    digest.update(str(tuple(X.shape)).encode())
    return digest.hexdigest()[:16]


def pretrain_autoencoder(
    ae: Autoencoder,
    X: torch.Tensor,
    *,
    method: str = "end-to-end",
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-3,
    recon_loss: str = "mse",
    seed: int | None = None,
    generator: torch.Generator | None = None,
    cache: bool = True,
    force: bool = False,
    show_progress: bool = True,
) -> History:
    """Pretrain ``ae`` on ``X`` (``"end-to-end"`` or DEC's ``"greedy"``), reusing a disk cache.

    The cache key is the data's fingerprint, the architecture, the method, epochs, batch size,
    learning rate and seed, so re-running a notebook reuses the weights; ``force=True`` retrains.
    The returned history's ``seconds`` is what the pretraining cost when it ran — here, or in the
    fit that filled the cache (saved with the weights; ``None`` for caches older than that) — so a
    comparison can charge a cached autoencoder's cost to every method that reuses it.
    For ``"greedy"``, ``epochs`` is split evenly between the layer-wise stage (per layer) and
    the fine-tuning stage. With ``seed=None`` nothing is cached (the run is not reproducible).
    """
    if method not in ("end-to-end", "greedy"):
        raise ValueError(f"pretrain must be 'end-to-end', 'greedy' or None, got {method!r}.")
    path: Path | None = None
    if cache and seed is not None:
        parts = [ae.config(), method, epochs, batch_size, lr, seed, _fingerprint(X)]
        if recon_loss != "mse":
            parts.append(recon_loss)
        if dist.world_size() > 1:  # a data-parallel pretraining is its own (equivalent) run
            parts.append(f"world{dist.world_size()}")
        key = json.dumps(parts, sort_keys=True)
        path = cache_dir() / f"ae-{hashlib.sha1(key.encode()).hexdigest()[:20]}.pt"
        # All ranks must agree on loading vs training (training runs collectives).
        hit = path.exists() and not force
        if dist.is_distributed():
            hit = bool(dist.all_sum(torch.tensor(int(hit), device=X.device)) == dist.world_size())
        if hit:
            saved = torch.load(path, map_location=X.device, weights_only=True)
            ae.load_state_dict(saved["state_dict"])
            history = History({k: list(v) for k, v in saved["history"].items()})
            history.from_cache = True
            history.seconds = saved.get("seconds")
            return history
    if method == "greedy" and recon_loss != "mse":
        raise ValueError("Greedy pretraining uses the squared error; use method='end-to-end'.")
    start = time.perf_counter()
    if method == "greedy":
        history = pretrain_greedy(
            ae, X, layer_epochs=max(1, epochs // 2), finetune_epochs=max(1, epochs - epochs // 2),
            batch_size=batch_size, lr=lr, generator=generator, show_progress=show_progress,
        )
    else:
        history = pretrain_end_to_end(
            ae, X, epochs=epochs, batch_size=batch_size, lr=lr, recon_loss=recon_loss,
            generator=generator, show_progress=show_progress,
        )
    if X.device.type == "cuda":
        torch.cuda.synchronize(X.device)
    history.seconds = time.perf_counter() - start
    if path is not None and dist.rank() == 0:
        state = {k: v.detach().cpu() for k, v in ae.state_dict().items()}
        tmp = path.with_suffix(".tmp")
        torch.save({"state_dict": state, "history": dict(history), "seconds": history.seconds}, tmp)
        tmp.replace(path)
    return history


def count_parameters(modules: Iterable[nn.Module]) -> int:
    """Number of trainable parameters (for the comparison tables)."""
    return sum(p.numel() for m in modules for p in m.parameters() if p.requires_grad)
