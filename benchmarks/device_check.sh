#!/usr/bin/env bash
# One prepared check for a GPU machine: the trainers' tests on the GPU, then the throughput
# table for a ResNet-32 on CIFAR-10-sized data, in float32 and in bfloat16 + channels_last;
# the second pass also times a short whole EPBT run (vectorised, 8 epochs per generation)
# for the share of wall time spent outside training. Not yet timed on a GPU: budget 10 minutes.
# A failing test does not stop the throughput passes (a device session is short); the script
# then exits 1 at the end. Needs the package's dependencies (pip install -e ".[test]").
#
#   bash benchmarks/device_check.sh          # on a machine with a CUDA GPU
#   bash benchmarks/device_check.sh --cpu    # the same steps at toy scale on a CPU, to try the script
#
# Figures go to stdout and, as JSON, to $OUT (default /tmp/epbt-device-check).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/epbt-device-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}

if [[ "${1:-}" == "--cpu" ]]; then
    device=cpu
    sizes=(--model resnet8 --train-size 512 --models 2,4)
else
    device=cuda
    sizes=(--model resnet32 --train-size 50000 --models 8,20,40 --run-population 8)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi

tests=0
EPBT_TEST_DEVICE=$device "$PYTHON" -m pytest -q tests/test_vectorized.py || tests=$?
"$PYTHON" benchmarks/throughput.py --device "$device" "${sizes[@]}" --skip-runs \
    --json "$OUT/throughput_float32.json"
"$PYTHON" benchmarks/throughput.py --device "$device" "${sizes[@]}" --run-trainer vectorized --run-epochs 8 \
    --precision bfloat16 --channels-last --json "$OUT/throughput_bfloat16.json"
if (( tests != 0 )); then
    echo "device check: tests/test_vectorized.py FAILED on $device (pytest exit $tests); the figures above stand" >&2
    exit 1
fi
