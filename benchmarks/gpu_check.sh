#!/usr/bin/env bash
# The GPU checks of issue 14 in one call, for a machine with a CUDA device (the device tool's run):
# the `gpu` tests, then the GPU kernel table (benchmarks/kernels_gpu.py), then whole searches with
# training.hot off and on, each under its own time limit so one slow stage cannot eat the others
# (180 + 240 + 120 s at most: give the call a timeout of 590 s).
# Logs go to $OUT (default ./gpu-out). Packages the machine lacks may travel as wheels in .whl/.
#
#     bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"

echo "== gpu tests"
timeout "${TESTS_S:-180}" python3 -m pytest -p no:cacheprovider -q -n0 -m gpu tests/test_triton.py tests/test_device.py tests/test_kernels.py tests/test_stacking.py tests/test_groups.py \
  2>&1 | tee "$OUT/tests.log" | tail -25
echo "== kernels_gpu"
timeout "${BENCH_S:-240}" python3 benchmarks/kernels_gpu.py --device cuda 2>&1 | tee "$OUT/kernels_gpu.md" | tail -120
echo "== whole searches, training.hot off and on, on the GPU"
timeout "${SEARCH_S:-120}" python3 benchmarks/kernels.py --sections search --search-budget "${SEARCH_BUDGET:-8}" \
  2>&1 | tee "$OUT/search.md" | tail -12
