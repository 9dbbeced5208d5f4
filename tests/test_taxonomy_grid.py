"""benchmarks/taxonomy_grid.py and lecture 07 share one grid definition (dclib.taxonomy_grid)."""

import csv
import json
import re
from pathlib import Path

import torch

from dclib import taxonomy_grid as tg

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "taxonomy_grid.py"
NOTEBOOK = ROOT / "notebooks" / "07_taxonomy.ipynb"
# the grid with the MLP rows re-measured from the Glorot start (session 9); lecture 07 reads it
MEASURED = ROOT / "benchmarks" / "measured" / "taxonomy_grid_cpu_2026-11-26_glorot.csv"


def _rows(path):
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_fast_script_writes_one_row_per_experiment_and_seed_and_resumes(tmp_path, capsys, benchmark_script):
    out = tmp_path / "grid.csv"
    argv = ["--fast", "--seeds", "2", "--n-samples", "120", "--device", "cpu", "--out", str(out),
            "--only", "AE + k-means,hardening / constant / joint,taxonomy", "--extra-conv-pretrain-epochs", "2"]
    benchmark_script("taxonomy_grid").main(argv)
    fields, rows = _rows(out)
    assert fields == list(tg.COLUMNS)
    # 3 chosen experiments + DBC and the taxonomy method with 2 conv pretraining epochs, each for seeds 0 and 1
    got = sorted((r["experiment"], int(r["pretrain_epochs"]), int(r["seed"])) for r in rows)
    want = sorted(
        [(name, epochs, seed) for name, epochs in (("AE + k-means (start)", 2), ("hardening / constant / joint", 2),
                                                   ("taxonomy method (conv)", 1), ("taxonomy method (conv)", 2),
                                                   ("DBC (conv autoencoder)", 2))
         for seed in (0, 1)]
    )
    assert got == want
    for r in rows:
        assert r["device"] == "cpu" and int(r["n_samples"]) == 120
        for m in ("acc_own", "nmi_own", "ari_kmeans", "acc_kmeans", "acc_start"):
            assert -1.0 <= float(r[m]) <= 1.0
        assert 0 <= int(r["smallest_cluster"]) <= 120 // tg.K
    start = [r for r in rows if r["experiment"].startswith("AE")]
    assert all(r["acc_own"] == r["acc_start"] for r in start)  # 0 epochs: the own assignment is the k-means start
    assert "±" in capsys.readouterr().out

    # resuming: every row is already there, nothing is refitted or duplicated
    benchmark_script("taxonomy_grid").main(argv)
    assert len(_rows(out)[1]) == len(rows)
    assert "s (+ pretrain" not in capsys.readouterr().out


def test_experiments_cover_the_grid_and_the_architecture_axis():
    names = [e.name for e in tg.experiments()]
    assert len(names) == len(set(names))
    assert names[0] == "AE + k-means (start)"
    assert [f"{c} / {s} / {m}" for c, s, m in tg.GRID] == names[1 : 1 + len(tg.GRID)]
    assert {e.architecture for e in tg.experiments() if e.name.startswith(("DBC", "taxonomy"))} == {"conv"}
    assert set(tg.LAMDA) == {c for c, s, m in tg.GRID if s == "constant" and m == "joint"}
    assert tg.settings(True).n_samples < tg.settings(False).n_samples
    assert tg.settings(False, conv_pretrain_epochs=50).conv_pretrain_epochs == 50


def test_conv_autoencoder_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = tg.conv_autoencoder(0), tg.conv_autoencoder(0), tg.conv_autoencoder(1)
    assert torch.rand(1) == before
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_notebook_and_script_import_the_grid_instead_of_defining_it():
    nb = json.loads(NOTEBOOK.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "from dclib.taxonomy_grid import" in code
    for name in ("LAMDA", "GRID", "DIMS"):
        assert not re.search(rf"^\s*{name}\s*=", code, re.M), f"the notebook redefines {name}"
    assert MEASURED.name in code  # the lecture reads the benchmark's committed CSV
    assert "from dclib.taxonomy_grid import" in SCRIPT.read_text()


def test_committed_csv_has_the_columns_and_the_lecture_settings():
    if not MEASURED.exists():  # written by the benchmark run; the lecture says so when it is missing
        return
    fields, rows = _rows(MEASURED)
    assert fields == list(tg.COLUMNS)
    assert rows and all(int(r["n_samples"]) == tg.FULL.n_samples for r in rows)
    keys = [(r["experiment"], r["seed"], r["pretrain_epochs"]) for r in rows]
    assert len(keys) == len(set(keys))
    known = {e.name for e in tg.experiments()}
    assert {r["experiment"] for r in rows} <= known
