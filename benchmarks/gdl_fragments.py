"""Plain GDL on MNIST pixels, with and without the fragment rule (``gdl_merge``'s ``min_size``).

    python benchmarks/gdl_fragments.py --root data --sizes 20000,70000

No learning at all: the k-NN graph (k = 20) of the first n images of full MNIST (train then test), its
initial clusters (1-NN components), then greedy GDL merging down to 10 clusters, once as plain GDL
(``min_size=1``) and once absorbing clusters under 1 % of the mean cluster size (``fragment_size``:
n / 1000 for 10 clusters, JULE's "auto"). Prints one row per run (ACC/NMI/ARI, the smallest final
cluster, the merge's seconds) and writes them to ``--out``. This is JULE's first forward pass, and
where its fragments come from (lecture 11, section 7.2).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dclib import evaluate, load_dataset  # noqa: E402
from dclib.graphs import fragment_size, gdl_merge, initial_clusters, knn_graph  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data", help="folder holding MNIST/raw/*.gz")
    parser.add_argument("--sizes", default="20000,70000", help="comma-separated numbers of images")
    parser.add_argument("--n-neighbors", type=int, default=20)
    parser.add_argument("--out", default="results/gdl_fragments.csv")
    args = parser.parse_args()

    data = load_dataset("mnist", root=args.root)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        X, y = data.X[:n].reshape(n, -1), data.y[:n].numpy()
        start = time.perf_counter()
        W = knn_graph(X, args.n_neighbors)
        initial = initial_clusters(W)
        graph_seconds = time.perf_counter() - start
        for min_size in (1, fragment_size(n, 10)):
            start = time.perf_counter()
            labels = gdl_merge(W, initial, 10, min_size=min_size)
            sizes = np.bincount(labels)
            rows.append({"n": n, "initial_clusters": int(initial.max()) + 1, "min_size": min_size,
                         **evaluate(y, labels), "smallest_cluster": int(sizes.min()),
                         "graph_seconds": graph_seconds, "merge_seconds": time.perf_counter() - start})
            print(pd.DataFrame(rows[-1:]).round(4).to_string(index=False, header=len(rows) == 1), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
