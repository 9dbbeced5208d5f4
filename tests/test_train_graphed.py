"""CUDA-graph replay in ``train``: the bookkeeping is checked on the CPU with a stand-in backend whose
"replay" re-runs the captured step into the captured outputs (what a graph does, minus the speed);
the real graphs are checked against the eager loop on a GPU (skipped on the CPU)."""

import numpy as np
import pytest
import torch

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


@pytest.fixture
def backends(monkeypatch):
    made = Backends()

    def fake(device):
        if not made.on:
            return None
        made.append(ReplayBackend())
        return made[-1]

    monkeypatch.setattr(train_module, "graph_backend", fake)
    return made


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


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_dec_and_idec_train_the_same_when_replayed(backends, digits, cls):
    """DEC's step reads its target P from a tensor refreshed in place, and its interval loss is summed
    in ``after_batch``, so replaying the step changes nothing: same history, labels and centroids."""
    kwargs = dict(dims=(64, 32, 8), pretrain="end-to-end", pretrain_epochs=2, update_interval=5, max_iter=40,
                  batch_size=64, n_init=2, device="cpu", random_state=0, cache=False)
    X, y = digits.X[:500], digits.y[:500]
    backends.on = False
    eager = cls(10, **kwargs).fit(X, y)
    backends.on = True
    graphed = cls(10, **kwargs).fit(X, y)
    # pretraining, then DEC, each with a graph for batches of 64 and one for 52 (500 = 7 × 64 + 52)
    assert [b.replays for b in backends[2:]] == [35, 5] and len(backends) == 4  # DEC: 40 iterations = 5 epochs
    assert graphed.history_ == eager.history_ and graphed.n_iter_ == eager.n_iter_ == 40
    assert graphed.epoch_history_.keys() == eager.epoch_history_.keys()
    for key, values in eager.epoch_history_.items():
        np.testing.assert_allclose(graphed.epoch_history_[key], values, rtol=1e-6, err_msg=key)
    np.testing.assert_array_equal(graphed.labels_, eager.labels_)
    np.testing.assert_allclose(graphed.cluster_centers_, eager.cluster_centers_, rtol=0, atol=0)
    assert np.isfinite(graphed.history_["loss"][1:]).all()


def test_dcn_trains_the_same_when_replayed(backends, digits):
    """DCN's assignment and centroid steps run after each optimiser step (``after_batch``) and change the
    centroids and assignments in place, so the replayed step reads the current ones."""
    kwargs = dict(dims=(64, 32, 8), pretrain_epochs=2, epochs=3, batch_size=64, n_init=2, device="cpu",
                  random_state=0, cache=False)
    X, y = digits.X[:500], digits.y[:500]
    backends.on = False
    eager = DCN(10, **kwargs).fit(X, y)
    backends.on = True
    graphed = DCN(10, **kwargs).fit(X, y)
    assert [b.replays for b in backends[2:]] == [3 * 7, 3]  # 500 = 7 × 64 + 52, three epochs
    for key, values in eager.history_.items():
        np.testing.assert_allclose(graphed.history_[key], values, rtol=1e-6, err_msg=key)
    np.testing.assert_array_equal(graphed.labels_, eager.labels_)
    np.testing.assert_array_equal(graphed.assignments_, eager.assignments_)
    np.testing.assert_allclose(graphed.cluster_centers_, eager.cluster_centers_, rtol=0, atol=0)


def test_vade_replays_its_elbo_step(backends, digits):
    X = digits.X[:400]
    model = VaDE(10, dims=(64, 32, 8), pretrain_epochs=2, epochs=4, batch_size=64, n_init=1, device="cpu",
                 random_state=0, cache=False).fit(X)
    assert [b.replays for b in backends[-2:]] == [4 * 6, 4]  # 400 = 6 full batches of 64 + one of 16
    assert np.isfinite(model.history_["loss"]).all() and len(model.history_["loss"]) == 4


# ---------------------------------------------------------------------------------------------- GPU


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
