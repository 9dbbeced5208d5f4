# Sourced by the device-call scripts (gpu_targets.sh, gpu_graphs.sh): their shared arguments and clock.
#   DATA_ROOT OUT SECONDS [gpu.py options...] -> $root $out $budget, ${extra[@]}, $here; `left` = seconds left.
set -u
root=${1:?data root}; out=${2:?output folder}; budget=${3:-540}
shift 3; extra=("$@")
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
end=$(( $(date +%s) + budget ))
left() { echo $(( end - $(date +%s) )); }
export PYTHONUNBUFFERED=1
