#!/usr/bin/env bash
# Everything that needs a GPU, in one run: build the CUDA plugins (torch_utils/ops), run the
# tests marked `gpu`, and run the benchmarks with --device=cuda. Writes into OUT_DIR:
#   env.txt          GPU, driver, torch, CUDA and nvcc versions
#   plugins.txt      the plugin builds (compiler output in full)
#   gpu-tests.txt    pytest -m gpu
#   results-gpu.md   bench/run_all.py --device=cuda (its tables go into the GPU section of bench/results.md)
#
#   bash bench/gpu_check.sh [OUT_DIR]       (default: $OUT, else ./gpu-check)
#
# Needs python3 with CUDA torch, pytest (pytest-xdist optional), click, scipy, pillow, psutil,
# nvcc and ninja. About 6-8 minutes on an H200, most of it the benchmarks. Set PYTHON to use
# another interpreter, BENCH_ONLY to choose benchmarks (default: all but metrics, which needs
# the Inception weights file). bench_authors_training.py (the authors' FPA training step beside
# ours) needs an IDSIA/fpainter checkout at $FPAINTER_DIR (default /tmp/fpainter) and einops;
# the GPU machine has no internet, so bring the checkout along; without it the row says skipped.

set -u
out=${1:-${OUT:-gpu-check}}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
export MAX_JOBS=${MAX_JOBS:-8}
# Build for this GPU only (faster; the build directory is keyed by the GPU name anyway).
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$($py -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}
start=$SECONDS
stamp() { echo "[gpu_check $((SECONDS - start)) s] $*"; }

{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader
  $py -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "arch list", torch.cuda.get_arch_list())'
  nvcc --version | tail -2; echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"; } > "$out/env.txt" 2>&1
cat "$out/env.txt"

# 1. The two plugins, built side by side; the tests and benchmarks then load them from the cache.
stamp "building the CUDA plugins"
build() {
    $py - "$1" <<'EOF'
import importlib, sys
from torch_utils import custom_ops
custom_ops.verbosity = 'full'
module = importlib.import_module(f'torch_utils.ops.{sys.argv[1]}')
module._plugin()
print(f'{sys.argv[1]}: plugin built and loaded')
EOF
}
( build bias_act > "$out/plugins-bias_act.log" 2>&1; echo "bias_act exit $?" >> "$out/plugins-bias_act.log" ) &
( build upfirdn2d > "$out/plugins-upfirdn2d.log" 2>&1; echo "upfirdn2d exit $?" >> "$out/plugins-upfirdn2d.log" ) &
wait
cat "$out/plugins-bias_act.log" "$out/plugins-upfirdn2d.log" > "$out/plugins.txt"
rm -f "$out/plugins-bias_act.log" "$out/plugins-upfirdn2d.log"
grep -E '^(bias_act|upfirdn2d)' "$out/plugins.txt"

# 2. The GPU-marked tests (they compare the CUDA paths with the references).
stamp "pytest -m gpu"
workers=$($py -c 'import xdist' 2>/dev/null && echo "-n 4" || echo "")
timeout ${TEST_TIMEOUT_S:-300} $py -m pytest -m gpu -q -ra -p no:cacheprovider $workers tests > "$out/gpu-tests.txt" 2>&1
echo "pytest exit $?" >> "$out/gpu-tests.txt"
tail -n 25 "$out/gpu-tests.txt"

# 3. The benchmarks on CUDA.
stamp "benchmarks"
$py bench/run_all.py --device=cuda --only="${BENCH_ONLY:-data,fpa_generator,networks,ops,painter,training,authors_training}" \
    --timeout=${BENCH_TIMEOUT_S:-150} --out="$out/results-gpu.md"
stamp "done"
