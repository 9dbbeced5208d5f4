#!/usr/bin/env bash
# One device call: check the CUDA-graph training steps on the GPU, then `gpu.py --plan graphs`.
#
#   benchmarks/gpu_graphs.sh DATA_ROOT OUT SECONDS [gpu.py options...]
#   benchmarks/gpu_graphs.sh data /tmp/out 300 --device cpu --fast --n 300   # a CPU dry run
#
# 1. tests/test_train_graphed.py on the GPU (its CUDA tests skip on a CPU): graphed pretraining, DEC and
#    IDEC against the eager loop, VaDE's in-place learning-rate decay. Needs pytest importable (carry it
#    with the site folder); without it the step is logged as not run and the benchmark goes on.
# 2. The plan, alone, one fit after the other, so that our seconds and ClustPy's come from one machine
#    (#9's ratios). Outputs: OUT/log_tests.txt, OUT/log_plan.txt and OUT/gpu_runs.csv.
source "$(dirname "$0")/gpu_common.sh" "$@"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)"
  timeout 150 python3 -m pytest -q -p no:cacheprovider "$here/../tests/test_train_graphed.py" \
    || echo "tests: exit status $?"; } > "$out/log_tests.txt" 2>&1

timeout $(( $(left) - 5 )) python3 "$here/gpu.py" --root "$root" --out "$out" --plan graphs \
  --deadline $(( $(left) - 20 )) --note alone "${extra[@]}" 2>&1 | grep -v "it/s" > "$out/log_plan.txt"
