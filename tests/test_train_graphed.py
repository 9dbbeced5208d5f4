"""CUDA-graph replay in ``train``, checked on the CPU with two stand-ins for ``CudaGraphBackend`` and on a
GPU against the eager loop (those tests skip on the CPU).

* ``ReplayBackend`` re-runs the captured Python on "replay": it checks the bookkeeping (warm-up undone,
  one graph per batch size, epoch sums, fallbacks), not the contract.
* ``TracingBackend`` is faithful: ``capture`` records the step's ATen operations with ``make_fx`` (tensors
  the step reads are kept by reference, as a CUDA graph keeps their addresses) and "replay" re-runs the
  recorded operations, never the Python. A step that keeps host-side state, or that reads a tensor which
  is later *replaced* rather than changed in place, replays wrong here exactly as it would on a GPU. Adam
  is made ``capturable`` on the CPU for it (a test-only patch of torch's device list), because a
  non-capturable Adam reads its step counter with ``.item()``, which a recording bakes in.
"""

import numpy as np
import pytest
import torch
import torch.optim.adam as adam_module
from torch.fx.experimental.proxy_tensor import make_fx

import dclib.methods.dcn as dcn_module
import dclib.methods.vade as vade_module
import dclib.train as train_module
from dclib import DCN, DEC, IDEC, VaDE
from dclib.models import MLPAutoencoder
from dclib.train import GraphedStep, decay_learning_rate, pretrain_end_to_end, train
from dclib.utils import make_generator

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class ReplayBackend:
    """CPU stand-in for ``CudaGraphBackend``: ``replay`` re-runs the captured function and writes
    its results into the tensors ``capture`` returned, as a graph writes into its static outputs."""

    def __init__(self):
        self.fn, self.outputs, self.replays, self.warm_ups = None, None, 0, 0

    def warm_up(self, fn, times):
        self.warm_ups += times
        for _ in range(times):
            fn()

    def capture(self, fn):
        self.fn, self.outputs = fn, fn()
        return self.outputs

    def replay(self):
        self.replays += 1
        for key, value in self.fn().items():
            self.outputs[key].copy_(value)


class Backends(list):
    """The ``ReplayBackend`` each ``train(cuda_graph=True)`` got while ``on`` (off: the eager loop)."""

    on = True


def _install(monkeypatch, backend_class) -> Backends:
    """Make ``train(cuda_graph=True)`` get a new ``backend_class`` while ``on``; returns them, in order."""
    made = Backends()

    def fake(device):
        if not made.on:
            return None
        made.append(backend_class())
        return made[-1]

    monkeypatch.setattr(train_module, "graph_backend", fake)
    return made


@pytest.fixture
def backends(monkeypatch):
    return _install(monkeypatch, ReplayBackend)


class TracingBackend(ReplayBackend):
    """A faithful CPU stand-in: replays the recorded ATen operations of the step, not its Python."""

    def capture(self, fn):
        self.graph = make_fx(lambda: fn())()  # records one real step (undone by GraphedStep, like the warm-up)
        with torch.no_grad():
            self.outputs = self.graph()
        return self.outputs

    def replay(self):
        self.replays += 1
        with torch.no_grad():  # the recording holds the backward pass and the optimiser step as plain operations
            for key, value in self.graph().items():
                self.outputs[key].copy_(value)


@pytest.fixture
def faithful(monkeypatch):
    """Every ``train(cuda_graph=True)`` gets a ``TracingBackend`` while ``on``; the methods build the optimisers
    they build on a GPU (capturable Adam, VaDE's tensor lr) whether ``on`` or not, so both runs share the maths."""
    made = _install(monkeypatch, TracingBackend)
    monkeypatch.setattr(adam_module, "_get_capturable_supported_devices", lambda *args, **kwargs: ["cuda", "cpu"])
    for module in (train_module, dcn_module, vade_module):
        monkeypatch.setattr(module, "cuda_graphs_enabled", lambda device: True)
    return made


def test_the_faithful_backend_replays_a_replaced_tensor_wrong_as_a_graph_would(faithful):
    """The contract on a small example: the step reads a target that changes after every epoch. Changed in
    place, the replayed run equals the eager one; replaced by a new tensor, the recording goes on reading the
    old one (as a CUDA graph reads the old address) and the runs part."""

    def fit(in_place: bool):
        w = torch.nn.Parameter(torch.zeros(4))
        X = torch.arange(40.0).reshape(10, 4) / 40
        state = {"target": torch.zeros(10)}
        opt = torch.optim.SGD([w], lr=0.5)

        def new_target(epoch, means):
            value = torch.full((10,), float(epoch + 1))
            if in_place:
                state["target"].copy_(value)
            else:
                state["target"] = value
            return False

        step = lambda idx: ((X[idx] @ w - state["target"][idx]) ** 2).mean()
        train(step, opt, 10, epochs=3, batch_size=5, device=torch.device("cpu"),
              generator=make_generator(0, torch.device("cpu")), after_epoch=new_target, show_progress=False,
              cuda_graph=True)
        return w.detach().clone()

    faithful.on = False
    eager = {in_place: fit(in_place) for in_place in (True, False)}
    faithful.on = True
    torch.testing.assert_close(fit(True), eager[True], rtol=0, atol=0)
    assert not torch.allclose(fit(False), eager[False])  # stale target: what DEC's refresh in place avoids


def _fit_ae(cuda_graph: bool, n: int = 300, epochs: int = 3, optimizer=torch.optim.Adam):
    X = torch.rand(n, 20, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ae = MLPAutoencoder((20, 16, 4))
    opt = optimizer(ae.parameters(), lr=1e-2)
    step = lambda idx: torch.nn.functional.mse_loss(ae(X[idx]), X[idx])
    seen = []
    history = train(step, opt, n, epochs=epochs, batch_size=64, device=torch.device("cpu"),
                    generator=make_generator(1, torch.device("cpu")), show_progress=False,
                    after_batch=lambda i, idx, terms: seen.append((i, len(idx), float(terms["loss"].detach()))),
                    cuda_graph=cuda_graph, modules=(ae,))
    return ae, history, seen


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)])
def test_replayed_training_equals_eager_training(backends, optimizer):
    """Warm-up and capture steps are undone (weights and optimiser state), so the replayed run trains
    exactly like the eager one. The last, smaller batch of each epoch gets its own graph, captured in
    the middle of the first epoch: its warm-up must restore the optimiser's moments, not zero them."""
    ae_eager, h_eager, seen_eager = _fit_ae(False, optimizer=optimizer)
    assert backends == []  # cuda_graph=False never asks for a backend
    ae_graph, h_graph, seen_graph = _fit_ae(True, optimizer=optimizer)
    assert [(b.warm_ups, b.replays) for b in backends] == [(3, 3 * 4), (3, 3)]  # 300 = 4 × 64 + one of 44
    assert h_graph["iteration"] == h_eager["iteration"] == [5, 10, 15]
    # the epoch sums are accumulated inside the graphs (batch size × term, fused): equal up to rounding
    np.testing.assert_allclose(h_graph["loss"], h_eager["loss"], rtol=1e-6)
    assert seen_graph == seen_eager and [(i, n) for i, n, _ in seen_graph] == [(i, 44 if i % 5 == 4 else 64)
                                                                              for i in range(15)]
    for a, b in zip(ae_eager.state_dict().values(), ae_graph.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


class FailingBackend(ReplayBackend):
    """A capture that fails after its warm-up, as a step that syncs with the host fails under CUDA capture."""

    def capture(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing")


def test_a_failed_capture_warns_and_that_batch_size_trains_eagerly(monkeypatch):
    """The full batches' capture fails (after its warm-up steps), the last batch's works: the run warns
    once, undoes the warm-up and ends exactly where the eager run ends."""
    made = []

    def first_capture_fails(device):
        made.append(ReplayBackend() if made else FailingBackend())
        return made[-1]

    monkeypatch.setattr(train_module, "graph_backend", first_capture_fails)
    ae_eager, h_eager, _ = _fit_ae(False)
    with pytest.warns(RuntimeWarning, match="batches of 64 train eagerly"):
        ae_graph, h_graph, _ = _fit_ae(True)
    assert [type(b) for b in made] == [FailingBackend, ReplayBackend] and made[1].replays == 3
    np.testing.assert_allclose(h_graph["loss"], h_eager["loss"], rtol=1e-6)
    for a, b in zip(ae_eager.state_dict().values(), ae_graph.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_a_changed_learning_rate_is_refused_unless_it_is_a_tensor_changed_in_place(backends):
    w = torch.nn.Parameter(torch.ones(3))
    step = lambda idx: (w * idx.float().unsqueeze(1)).pow(2).mean()

    def run(lr, change):
        opt = torch.optim.SGD([w], lr=lr)
        graphed = GraphedStep(step, opt, 4, torch.device("cpu"), train_module.graph_backend(None))
        graphed(torch.arange(4))
        change(opt)
        graphed(torch.arange(4))
        return opt

    with pytest.raises(RuntimeError, match="learning rate changed"):
        run(0.1, lambda opt: decay_learning_rate(opt, 0.5))  # a float lr: baked into a real graph
    with pytest.raises(RuntimeError, match="learning rate changed"):  # a new tensor: the graph reads the old one
        run(torch.tensor(0.1), lambda opt: opt.param_groups[0].update(lr=opt.param_groups[0]["lr"] * 0.5))
    opt = run(torch.tensor(0.1), lambda opt: decay_learning_rate(opt, 0.5))  # in place: fine
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(0.05)


def test_decay_learning_rate_matches_step_lr_for_floats():
    w = torch.nn.Parameter(torch.ones(1))
    by_hand, scheduled = torch.optim.Adam([w], lr=5e-4), torch.optim.Adam([w], lr=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(scheduled, step_size=10, gamma=0.9)
    for epoch in range(35):
        scheduled.step()
        scheduler.step()
        if (epoch + 1) % 10 == 0:
            decay_learning_rate(by_hand, 0.9)
        assert by_hand.param_groups[0]["lr"] == scheduled.param_groups[0]["lr"]  # bit for bit


@pytest.mark.filterwarnings("ignore::dclib.methods.base.DegenerateClusteringWarning")  # 2 epochs of pretraining
@pytest.mark.parametrize("cls", [DEC, IDEC, DCN])
def test_dec_idec_and_dcn_train_the_same_when_their_recorded_steps_replay(faithful, digits, cls):
    """DEC's target P is refreshed in place and its interval loss is summed in ``after_batch``; DCN's centroids,
    counts and assignments change in place in ``after_batch``. So replaying the recorded steps (pretraining's
    too) changes nothing: the same history, labels and centroids as the eager loop, bit for bit."""
    kwargs = dict(dims=(64, 32, 8), pretrain="end-to-end", pretrain_epochs=2, batch_size=64, n_init=2,
                  device="cpu", random_state=0, cache=False)
    kwargs.update(epochs=3) if cls is DCN else kwargs.update(update_interval=5, max_iter=40)
    X, y = digits.X[:500], digits.y[:500]
    faithful.on = False
    eager = cls(10, **kwargs).fit(X, y)
    faithful.on = True
    graphed = cls(10, **kwargs).fit(X, y)
    # pretraining, then the method, each with a graph for batches of 64 and one for 52 (500 = 7 × 64 + 52)
    assert [b.replays for b in faithful] == [2 * 7, 2, *([3 * 7, 3] if cls is DCN else [35, 5])]
    assert graphed.history_.keys() == eager.history_.keys()
    for key, values in eager.history_.items():
        np.testing.assert_allclose(graphed.history_[key], values, rtol=1e-6, err_msg=key)
    np.testing.assert_array_equal(graphed.labels_, eager.labels_)
    np.testing.assert_allclose(graphed.cluster_centers_, eager.cluster_centers_, rtol=0, atol=0)


def test_vade_replays_its_elbo_step_and_reads_its_in_place_lr_decay(faithful, digits):
    """VaDE's lr is a tensor decayed in place: with lr_decay=1e-9, epochs 11-12 change nothing — if the recorded
    step reads the decayed lr. (An lr of exactly 0 would divide by 0 in capturable Adam.)"""
    config = dict(dims=(64, 32, 8), pretrain_epochs=2, batch_size=64, n_init=1, lr_decay=1e-9, device="cpu",
                  random_state=0, cache=False)
    X = digits.X[:400]
    ten = VaDE(10, epochs=10, **config).fit(X)
    assert [b.replays for b in faithful[2:4]] == [10 * 6, 10]  # 400 = 6 full batches of 64 + one of 16
    twelve = VaDE(10, epochs=12, **config).fit(X)
    assert np.isfinite(twelve.history_["loss"]).all() and twelve.history_["loss"][-1] < twelve.history_["loss"][0]
    torch.testing.assert_close(twelve.means_, ten.means_, rtol=0, atol=1e-6)
    assert not torch.allclose(VaDE(10, epochs=12, **{**config, "lr_decay": 0.9}).fit(X).means_, ten.means_)


def _pretrain(graphs: str, monkeypatch, n: int = 1000, epochs: int = 3):
    monkeypatch.setenv("DCLIB_CUDA_GRAPHS", graphs)
    device = torch.device("cuda")
    X = torch.rand(n, 64, generator=torch.Generator().manual_seed(0)).to(device)
    torch.manual_seed(0)
    ae = MLPAutoencoder((64, 32, 32, 128, 5)).to(device)
    history = pretrain_end_to_end(ae, X, epochs=epochs, batch_size=128, generator=make_generator(1, device),
                                  show_progress=False)
    return ae, history


@cuda
def test_graphed_pretraining_matches_eager_weights_and_losses(monkeypatch):
    torch.backends.cuda.matmul.allow_tf32 = False
    ae_eager, h_eager = _pretrain("0", monkeypatch)
    ae_graph, h_graph = _pretrain("1", monkeypatch)
    # 1000 = 7 full batches of 128 (replayed) + one of 104 (eager) per epoch
    assert h_graph["iteration"] == h_eager["iteration"] == [8, 16, 24]
    torch.testing.assert_close(torch.tensor(h_graph["loss"]), torch.tensor(h_eager["loss"]), rtol=1e-4, atol=1e-6)
    for (name, a), b in zip(ae_eager.state_dict().items(), ae_graph.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=f"{name} differs after graphed training")
    assert h_graph["loss"][-1] < h_graph["loss"][0]  # and it did train


def _augmented_epoch_losses(device: torch.device) -> np.ndarray:
    """Pretraining on 512 copies of one image with an lr of 1e-12 (the weights barely move): only fresh random
    transforms at every step make the epoch losses differ; draws frozen into a recording would repeat exactly."""
    from dclib.augment import SHIFT_ROTATE

    X = torch.zeros(512, 1, 28, 28, device=device)
    X[:, :, 8:20, 12:16] = 1.0
    torch.manual_seed(0)
    ae = MLPAutoencoder((784, 64, 8)).to(device)
    history = pretrain_end_to_end(ae, X, epochs=3, batch_size=128, lr=1e-12, augment=SHIFT_ROTATE,
                                  generator=make_generator(1, device), show_progress=False)
    return np.asarray(history["loss"])


def test_replayed_augmented_pretraining_draws_new_transforms_at_every_step(faithful):
    losses = _augmented_epoch_losses(torch.device("cpu"))
    assert [b.replays for b in faithful] == [3 * 4]  # 512 = 4 batches of 128, all replayed
    assert np.isfinite(losses).all() and np.ptp(losses) > 1e-4 * losses.mean(), losses


@cuda
def test_graphed_augmented_pretraining_draws_new_transforms_at_every_replay(monkeypatch):
    """The augmentation's random draws are inside the captured step, so every replay must draw anew (the default
    CUDA generator's offset advances); frozen draws would feed the same transformed batch again and again."""
    monkeypatch.setenv("DCLIB_CUDA_GRAPHS", "1")
    losses = _augmented_epoch_losses(torch.device("cuda"))
    assert np.isfinite(losses).all() and np.ptp(losses) > 1e-4 * losses.mean(), losses


@cuda
@pytest.mark.parametrize("cls", [DEC, IDEC, DCN])
def test_graphed_dec_and_dcn_match_eager_on_the_gpu(monkeypatch, digits, cls):
    torch.backends.cuda.matmul.allow_tf32 = False
    kwargs = dict(dims=(64, 32, 8), pretrain="end-to-end", pretrain_epochs=3, update_interval=5, max_iter=60,
                  batch_size=64, n_init=2, device="cuda", random_state=0, cache=False)
    if cls is DCN:
        kwargs = {**{k: v for k, v in kwargs.items() if k not in ("pretrain", "update_interval", "max_iter")},
                  "epochs": 3}
    fits = {}
    for graphs in ("0", "1"):
        monkeypatch.setenv("DCLIB_CUDA_GRAPHS", graphs)
        fits[graphs] = cls(10, **kwargs).fit(digits.X, digits.y)
    assert (fits["1"].labels_ == fits["0"].labels_).mean() > 0.99
    np.testing.assert_allclose(fits["1"].history_["loss"][1:], fits["0"].history_["loss"][1:], rtol=1e-3)


@cuda
def test_graphed_vade_trains_like_eager_and_sees_its_in_place_lr_decay_on_the_gpu(monkeypatch, digits):
    config = dict(dims=(64, 32, 8), pretrain_epochs=3, batch_size=64, n_init=1, device="cuda", random_state=0,
                  cache=False)
    monkeypatch.setenv("DCLIB_CUDA_GRAPHS", "0")
    eager = VaDE(10, epochs=12, **config).fit(digits.X)
    monkeypatch.setenv("DCLIB_CUDA_GRAPHS", "1")
    graphed = VaDE(10, epochs=12, **config).fit(digits.X)
    assert np.isfinite(graphed.history_["loss"]).all() and graphed.history_["loss"][-1] < graphed.history_["loss"][0]
    np.testing.assert_allclose(graphed.history_["loss"][-1], eager.history_["loss"][-1], rtol=0.02)
    # lr_decay=1e-9 all but stops training after epoch 10 (an lr of exactly 0 would divide by 0 in capturable
    # Adam): epochs 11-12 then change nothing, if the graph reads the in-place lr
    ten, twelve = (VaDE(10, epochs=e, lr_decay=1e-9, **config).fit(digits.X) for e in (10, 12))
    torch.testing.assert_close(twelve.means_, ten.means_, rtol=1e-5, atol=1e-6)
