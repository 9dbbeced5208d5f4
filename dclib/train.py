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
import warnings
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
    "GraphedStep",
    "GraphCaptureError",
    "cuda_graphs_enabled",
    "graph_backend",
    "decay_learning_rate",
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
    after_batch: Callable[[int, torch.Tensor, dict[str, torch.Tensor]], None] | None = None,
    cuda_graph: bool = False,
    modules: Iterable[nn.Module] = (),
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

    ``after_batch(iteration, idx, terms)`` runs after each optimiser step, with the batch's indices
    (this rank's share, data parallel) and the step's terms (device tensors: read them on the device,
    or the loop syncs); DCN's assignment and centroid steps and DEC's running loss live there.
    ``cuda_graph=True`` replays every step from a captured CUDA graph (``GraphedStep``: read its
    contract), one graph per batch size (the full batches, and an epoch's last, smaller one), where
    ``graph_backend`` allows it; ``modules`` are the modules whose buffers a capture's warm-up must
    not change.
    """
    history = History() if history is None else history
    distributed = dist.is_distributed()
    batches = generator
    if distributed:
        dist.broadcast_parameters(p for group in optimizer.param_groups for p in group["params"])
        batches = dist.batch_generator(generator, device)
    # One captured step per batch size (the full batches, and an epoch's last, smaller one), made lazily.
    graphs = _GraphedSteps(step, optimizer, device, modules, desc) if cuda_graph and not distributed else None
    if graphs is not None and not graphs.available:
        graphs = None
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
            weight = None
            if distributed:
                n_global, idx = len(idx), dist.shard_batch(idx)  # this rank's share
                weight = dist.shard_weight(len(idx), n_global) if sample_mean else None
            if graphs is not None and (replayed := graphs(idx)) is not None:
                terms = replayed  # its epoch sums accumulate inside the graph
            else:
                terms = _eager_step(step, optimizer, idx, weight)
                _accumulate(totals, terms, len(idx))
            seen += len(idx)
            if after_batch is not None:
                after_batch(iteration, idx, terms)
            iteration += 1
            if max_iter is not None and iteration >= max_iter:
                stop = True
                break
        if graphs is not None:
            graphs.drain_into(totals)
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


class CudaGraphBackend:
    """Capture and replay with ``torch.cuda.CUDAGraph``; the warm-up runs on a side stream, as capture requires."""

    def __init__(self, device: torch.device):
        self.device = device
        self.graph = torch.cuda.CUDAGraph()

    def warm_up(self, fn: Callable[[], object], times: int) -> None:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(times):
                fn()
        torch.cuda.current_stream(self.device).wait_stream(side)

    def capture(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        with torch.cuda.graph(self.graph):
            return fn()

    def replay(self) -> None:
        self.graph.replay()


def cuda_graphs_enabled(device: torch.device) -> bool:
    """Whether ``train(cuda_graph=True)`` replays steps on ``device``: a CUDA device, one process,
    and ``DCLIB_CUDA_GRAPHS`` not ``0`` (set it to compare with the eager loop, or to debug a step).
    Methods use it to build a ``capturable`` optimiser and a tensor learning rate only when needed."""
    return device.type == "cuda" and not dist.is_distributed() and os.environ.get("DCLIB_CUDA_GRAPHS", "1") != "0"


def graph_backend(device: torch.device) -> CudaGraphBackend | None:
    """The backend that replays captured steps, or None where ``train`` runs every step eagerly.
    Tests replace this function to run the graphed bookkeeping on the CPU."""
    return CudaGraphBackend(device) if cuda_graphs_enabled(device) else None


class GraphedStep:
    """One optimiser step on a batch of a fixed size, captured once and replayed for every such batch.

    Why: on a GPU the eager loop is launch-bound — on an H200 a d-500-500-2000-10 autoencoder step
    costs ~2 ms of kernel launches for microseconds of arithmetic. Forward, backward and the
    optimiser step are captured once and replayed with the batch's indices copied into a static
    buffer: the same batches and the same maths, without the launches.

    The contract, because a replay re-runs kernels, not Python: ``step`` must be pure in the batch
    (no host-side state; tensors it reads, e.g. DEC's target P, are updated *in place*); an
    optimiser with a state step counter must be built with ``capturable=True``; a learning rate that
    a scheduler changes must be a tensor (a float is baked into the graph, and a changed float is
    refused at the next replay). Capture is lazy (at the first batch of its size, so a
    ``before_batch`` hook can set up what the step reads) and its warm-up steps are undone: the
    parameters, the ``modules``' buffers and the optimiser's state are restored (state that the
    warm-up created is zeroed, which is a fresh optimiser's), so training goes on from where it was.

    The epoch sums of the terms are accumulated inside the graph too (``drain_into``), so a replayed
    step launches nothing but the replay and the copy of its indices.
    """

    def __init__(self, step: StepFn, optimizer: torch.optim.Optimizer, batch_size: int, device: torch.device,
                 backend, modules: Iterable[nn.Module] = (), warm_up_steps: int = 3):
        self.step, self.optimizer, self.backend = step, optimizer, backend
        self.modules = tuple(modules)
        self.warm_up_steps = warm_up_steps
        self.static_idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.batch_size = batch_size
        self.outputs: dict[str, torch.Tensor] | None = None
        self.sums: dict[str, torch.Tensor] = {}  # Σ over replayed batches of batch_size × term
        self._captured_lrs: list = []

    def _one_step(self) -> dict[str, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)  # backward then writes fresh (graph-owned) gradients
        terms = _terms(self.step(self.static_idx))
        terms["loss"].backward()
        self.optimizer.step()
        terms = {key: value.detach() for key, value in terms.items()}
        for key, value in terms.items():
            if key not in self.sums:  # allocated in the (eager) warm-up, outside the graph's pool
                self.sums[key] = torch.zeros_like(value)
            self.sums[key].add_(value, alpha=self.batch_size)
        return terms

    def _optimizer_state(self) -> list[torch.Tensor]:
        return [v for state in self.optimizer.state.values() for v in state.values() if torch.is_tensor(v)]

    def _capture(self) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        buffers = [b for m in self.modules for b in m.buffers()]
        kept = [*params, *buffers, *self._optimizer_state()]
        saved = {id(t): t.detach().clone() for t in kept}
        try:
            self.backend.warm_up(self._one_step, self.warm_up_steps)
            self.outputs = self.backend.capture(self._one_step)
        except Exception as error:
            raise GraphCaptureError(f"{type(error).__name__}: {error}") from error
        finally:
            with torch.no_grad():  # undo the warm-up in place: the graph holds these tensors' addresses
                for tensor in kept:
                    tensor.copy_(saved[id(tensor)])
                for tensor in self._optimizer_state():
                    if id(tensor) not in saved:  # created by the warm-up: a fresh optimiser's zeros
                        tensor.zero_()
                for value in self.sums.values():
                    value.zero_()
        self._captured_lrs = [g["lr"] for g in self.optimizer.param_groups]

    def __call__(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the step on ``idx`` (a batch of this size); returns the step's terms (overwritten by the next call)."""
        if self.outputs is None:
            self._capture()
        for group, captured in zip(self.optimizer.param_groups, self._captured_lrs, strict=True):
            # a tensor lr must be the same tensor (changed in place); a float must be unchanged
            if (group["lr"] is not captured) if torch.is_tensor(captured) else (group["lr"] != captured):
                raise RuntimeError(
                    "The learning rate changed after the CUDA graph was captured, and a graph replays the "
                    "old one. Build the optimiser with a tensor lr (torch.tensor(lr, device=...)) and change "
                    "it in place (dclib.train.decay_learning_rate), or set DCLIB_CUDA_GRAPHS=0."
                )
        self.static_idx.copy_(idx)
        self.backend.replay()
        return self.outputs

    def drain_into(self, totals: dict[str, torch.Tensor]) -> None:
        """Add the replayed batches' sums to ``totals`` (``train``'s epoch sums) and reset them."""
        for key, value in self.sums.items():
            totals[key] = totals[key] + value if key in totals else value.clone()
            value.zero_()


class GraphCaptureError(RuntimeError):
    """Capturing a training step in a CUDA graph failed (the warm-up steps were undone)."""


class _GraphedSteps:
    """``train``'s graphed steps: one ``GraphedStep`` per batch size, each captured at its first batch.

    A size whose capture fails (a step that syncs with the host, say) trains eagerly from then on,
    with a warning: the same maths, only slower, instead of a training run lost to a speed-up.
    """

    def __init__(self, step: StepFn, optimizer: torch.optim.Optimizer, device: torch.device,
                 modules: Iterable[nn.Module], desc: str = "training"):
        self.step, self.optimizer, self.device, self.modules, self.desc = step, optimizer, device, tuple(modules), desc
        first = graph_backend(device)
        self.available = first is not None
        self._spare = first  # the first capture uses it
        self.by_size: dict[int, GraphedStep] = {}
        self.failed: set[int] = set()

    def __call__(self, idx: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """The replayed step's terms, or None where this batch size trains eagerly."""
        size = len(idx)
        if size in self.failed:
            return None
        if size not in self.by_size:
            backend, self._spare = (self._spare or graph_backend(self.device)), None
            self.by_size[size] = GraphedStep(self.step, self.optimizer, size, self.device, backend, self.modules)
        try:
            return self.by_size[size](idx)
        except GraphCaptureError as error:
            del self.by_size[size]
            self.failed.add(size)
            warnings.warn(f"{self.desc}: capturing the training step in a CUDA graph failed ({error}); batches of "
                          f"{size} train eagerly instead (same maths, slower). DCLIB_CUDA_GRAPHS=0 skips the attempt.",
                          RuntimeWarning, stacklevel=2)
            return None

    def drain_into(self, totals: dict[str, torch.Tensor]) -> None:
        for graphed in self.by_size.values():
            graphed.drain_into(totals)


def decay_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Multiply every group's learning rate by ``factor``: a float is replaced (as ``StepLR`` does),
    a tensor lr is changed in place, so a captured CUDA graph (``GraphedStep``) sees the new value."""
    with torch.no_grad():
        for group in optimizer.param_groups:
            if torch.is_tensor(group["lr"]):
                group["lr"].mul_(factor)
            else:
                group["lr"] = group["lr"] * factor


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
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    show_progress: bool = True,
) -> History:
    """Train the whole autoencoder with Adam on the reconstruction error.

    ``recon_loss="mse"`` (DEC, linear output) or ``"bce"`` (the decoder outputs Bernoulli
    logits, as VaDE's likelihood expects). ``augment`` (e.g. ``dclib.augment.SHIFT_ROTATE``)
    transforms every batch of images, and the autoencoder reconstructs the transformed batch, as in
    DEC-DA (Guo et al., 2018): the code has to describe a digit, not its exact pixels, so longer
    training keeps improving the clusters instead of overfitting (lecture 01, section 9.1). Its
    random draws come from the default generator (seeded by the estimators), which a CUDA graph
    replays correctly.
    """
    if recon_loss not in RECON_LOSSES:
        raise ValueError(f"recon_loss must be one of {sorted(RECON_LOSSES)}, got {recon_loss!r}.")
    if augment is not None and X.dim() != 4:
        raise ValueError(
            f"Augmented pretraining transforms images shaped (n, C, H, W); got X of shape {tuple(X.shape)}. "
            "Pass the images unflattened, or pretrain without augmentation (an estimator's pretrain_augment=None)."
        )
    loss_fn = RECON_LOSSES[recon_loss]
    # Capturable Adam keeps its step counter on the device, so the CUDA-graph replay (``train``'s
    # ``cuda_graph``; DCLIB_CUDA_GRAPHS=0 turns it off) can run the optimiser step too.
    optimizer = torch.optim.Adam(ae.parameters(), lr=lr, capturable=cuda_graphs_enabled(X.device))
    ae.train()

    def step(idx: torch.Tensor) -> torch.Tensor:
        x = X[idx] if augment is None else augment(X[idx])
        return loss_fn(ae(x), x)

    return train(
        step, optimizer, len(X), epochs=epochs, batch_size=batch_size, device=X.device,
        generator=generator, desc="pretrain (end-to-end)", show_progress=show_progress,
        cuda_graph=True, modules=(ae,),
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
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
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
    comparison can charge a cached autoencoder's cost to every method that reuses it. ``augment``
    (end-to-end only) trains on transformed images; see ``pretrain_end_to_end``.
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
        if augment is not None:
            parts.append(f"augment={augment!r}")
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
    if method == "greedy" and augment is not None:
        raise ValueError("Augmented pretraining is end-to-end only; use pretrain='end-to-end' or no augmentation.")
    start = time.perf_counter()
    if method == "greedy":
        history = pretrain_greedy(
            ae, X, layer_epochs=max(1, epochs // 2), finetune_epochs=max(1, epochs - epochs // 2),
            batch_size=batch_size, lr=lr, generator=generator, show_progress=show_progress,
        )
    else:
        history = pretrain_end_to_end(
            ae, X, epochs=epochs, batch_size=batch_size, lr=lr, recon_loss=recon_loss, augment=augment,
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
