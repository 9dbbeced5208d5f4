"""The CUDA-graph pretraining loop must train exactly like the eager loop (GPU-only checks skip on CPU)."""

import pytest
import torch

from dclib.models import MLPAutoencoder
from dclib.train import pretrain_end_to_end, train_graphed
from dclib.utils import make_generator

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_train_graphed_refuses_cpu_tensors_with_a_clear_error():
    ae = MLPAutoencoder((20, 8, 3))
    opt = torch.optim.Adam(ae.parameters())
    with pytest.raises(ValueError, match="CUDA"):
        train_graphed(lambda idx: ae(torch.zeros(len(idx), 20)).sum(), opt, ae, 10, epochs=1, batch_size=4,
                      device=torch.device("cpu"))


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
