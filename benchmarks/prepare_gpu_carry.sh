#!/usr/bin/env bash
# Build .gpu/, the folder a device call carries (it is git-ignored through .git/info/exclude):
#   .gpu/site  pure-Python packages the GPU machine lacks, copied from this checkout's .venv
#              (ClustPy and mlxtend for the benchmarks; pytest and its dependencies for the GPU tests)
#   .gpu/data  MNIST/raw/*.gz, copied from the shared data folder (nothing is downloaded)
# Then, on the device: export PYTHONPATH=$PWD/.gpu/site:$PWD; bash benchmarks/gpu_graphs.sh .gpu/data $OUT 560
#
#   benchmarks/prepare_gpu_carry.sh [SHARED_DATA]   # default ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared/data}
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/site .gpu/data/MNIST/raw
for package in clustpy mlxtend pytest _pytest pluggy iniconfig packaging pygments; do
  [ -d "$site/$package" ] || { echo "missing $package in .venv: run 'uv sync --frozen --group bench'" >&2; exit 1; }
  cp -r "$site/$package" .gpu/site/
done
cp "$shared"/MNIST/raw/*.gz .gpu/data/MNIST/raw/
find .gpu -name __pycache__ -type d -prune -exec rm -rf {} +
du -sh .gpu
