import importlib.util
import os
import sys
from pathlib import Path

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


@pytest.fixture
def check_contract(capsys):
    """The contract of every lab auto-check: ✗ on the stub and on each wrong answer, ✓ on the solution."""

    def stub(*args, **kwargs):
        raise NotImplementedError()

    def verify(check, solution, wrongs):
        assert check(stub) is False
        assert "not implemented" in capsys.readouterr().out
        for wrong in wrongs:
            assert check(wrong) is False, wrong.__name__
            assert "✗" in capsys.readouterr().out
        assert check(solution) is True
        assert "✓" in capsys.readouterr().out

    return verify


@pytest.fixture
def benchmark_script():
    """Load ``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not a package)."""

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"{name}_script", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # a script's dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    return load
