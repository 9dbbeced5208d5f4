import gzip
import struct

import numpy as np
import pytest
import torch

from dclib.data import load_dataset, minibatches, read_idx


@pytest.mark.parametrize("name, shape, k", [("mnist5k", (5000, 1, 28, 28), 10), ("digits", (1797, 1, 8, 8), 10),
                                            ("blobs", (1500, 2), 4), ("moons", (1500, 2), 2)])
def test_embedded_datasets(name, shape, k):
    ds = load_dataset(name)
    assert tuple(ds.X.shape) == shape and ds.X.dtype == torch.float32 and ds.y.dtype == torch.int64
    assert ds.X.min() >= 0 and ds.X.max() <= 1 and ds.X.max() > 0.9
    assert ds.n_clusters == k and len(torch.unique(ds.y)) == k
    assert ds.X_flat.shape == (shape[0], int(np.prod(shape[1:])))
    assert ds.X_flat.data_ptr() == ds.X.data_ptr()  # a view, not a copy


def test_mnist5k_is_balanced_real_digits():
    ds = load_dataset("mnist5k")
    assert torch.bincount(ds.y).tolist() == [500] * 10


def test_unknown_dataset_names_choices():
    with pytest.raises(ValueError, match="mnist5k"):
        load_dataset("imagenet")


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_local_mnist_reads_gz_idx(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    full = load_dataset("mnist", root=tmp_path)
    test = load_dataset("mnist-test", root=tmp_path)
    assert full.X.shape == (10, 1, 28, 28) and test.X.shape == (4, 1, 28, 28)
    assert full.y.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    expected = read_idx(raw / "t10k-images-idx3-ubyte.gz") / 255.0
    torch.testing.assert_close(test.X[:, 0], torch.as_tensor(expected, dtype=torch.float32))


def test_missing_files_say_what_to_put_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="usps.bz2"):
        load_dataset("usps", root=tmp_path)
    with pytest.raises(ValueError, match="root="):
        load_dataset("fashion-mnist")


def test_minibatches_cover_every_index_once():
    g = torch.Generator().manual_seed(0)
    batches = list(minibatches(103, 10, generator=g))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(torch.cat(batches).tolist()) == list(range(103))
    g2 = torch.Generator().manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(batches, minibatches(103, 10, generator=g2), strict=True))


def test_subset_and_device():
    ds = load_dataset("digits").subset(100, random_state=1)
    assert len(ds) == 100 and ds.y.shape == (100,)
    assert load_dataset("digits", device="cpu").X.device.type == "cpu"
