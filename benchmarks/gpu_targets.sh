#!/usr/bin/env bash
# The open issues' GPU rows (`gpu.py --plan targets`) in one device call of about nine minutes.
#
#   benchmarks/gpu_targets.sh DATA_ROOT OUT SECONDS [gpu.py options...]
#   benchmarks/gpu_targets.sh data /tmp/out 300 --device cpu --fast --n 300   # a CPU dry run
#
# Phase 1 runs alone, so that its seconds compare with ClustPy's earlier runs on the same GPU kind:
# VaDE (with its full-covariance refit), AE + k-means and DCN on the MNIST test set, every seed.
# Phase 2 runs the full-MNIST rows as five processes side by side on the one GPU (VaDE; InfoGAN;
# CatGAN; DEN and the embedding method; JULE). These models are small and their steps are bound by
# kernel launches, so the GPU is mostly idle in any one process; side by side they share it, and
# their seconds are upper bounds of a lone run (every row's note column says "5 streams").
# Each phase stops starting jobs at its deadline; `timeout` ends a straggler so that the logs and
# the merged CSV are always written. Outputs: OUT/log_*.txt and OUT/gpu_runs.csv.
source "$(dirname "$0")/gpu_common.sh" "$@"
tmp=$(mktemp -d)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/log_phase1.txt" 2>&1
{ python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)"
  timeout $(( $(left) - 300 )) python3 "$here/gpu.py" --root "$root" --out "$tmp/p1" --plan targets \
    --jobs 'mnist-test/ours-gpu/*/*' --deadline $(( $(left) - 390 )) --note alone "${extra[@]}"; } 2>&1 \
  | grep -v "it/s" >> "$out/log_phase1.txt"

stream() {  # name, patterns: one process of phase 2
  OMP_NUM_THREADS=3 timeout $(( $(left) - 10 )) python3 "$here/gpu.py" --root "$root" --out "$tmp/$1" \
    --plan targets --jobs "$2" --deadline $(( $(left) - 25 )) --note "5 streams" "${extra[@]}" 2>&1 \
    | grep -v "it/s" > "$out/log_$1.txt"
}
stream vade 'mnist/ours-gpu/vade/*' &
stream infogan 'mnist/ours-gpu/infogan/*' &
stream catgan 'mnist/ours-gpu/catgan/*' &
stream structure 'mnist/ours-gpu/den/*,mnist/ours-gpu/embedding/*' &
stream jule 'mnist/ours-gpu/jule/*' &
wait

python3 - "$tmp" "$out/gpu_runs.csv" <<'EOF'
import sys
from pathlib import Path

import pandas as pd

parts = [pd.read_csv(f) for f in sorted(Path(sys.argv[1]).glob("*/gpu_runs.csv"))]
if parts:
    pd.concat(parts).to_csv(sys.argv[2], index=False)
    print(f"{sum(map(len, parts))} runs -> {sys.argv[2]}")
EOF
