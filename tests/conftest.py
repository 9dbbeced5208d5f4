import os

import pytest
import torch

# Tests never touch the user's cache and never need a GPU.
os.environ.setdefault("DCLIB_FAST", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DCLIB_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    yield


@pytest.fixture(scope="session")
def digits():
    from dclib import load_dataset

    return load_dataset("digits")
