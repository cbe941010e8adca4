#!/usr/bin/env bash
# Issue 22's indicative GPU runs, one seed each of EPBT and Baseline 1 on ResNet-32 and all the
# CIFAR-10 JPEGs (benchmarks/gpu_indicative/*.yaml), in chunks that resume: each call trains until
# BUDGET seconds have passed, stops the run in hand with SIGTERM (its completed generations are
# kept), prints where both runs stand, and packs their directories into $OUT/gpu_runs.tar.0, .1, ...
# (parts of at most 15 MiB; TensorBoard files left out, and a finished run's checkpoints too: best.pt
# keeps its best model), which the next call takes as RUNS. Baseline 1 goes first: it is 1/8 of the work.
#
#   bash benchmarks/gpu_indicative.sh DATA.tar.gz RUNS BUDGET   # RUNS: a prefix, e.g. prev/gpu_runs.tar;
#                                                               # no RUNS.* files: a fresh start
#   bash benchmarks/gpu_indicative.sh DATA.tar.gz RUNS BUDGET --cpu   # toy scale on a CPU, to try it
#
# DATA.tar.gz is ../shared/data/cifar10-jpeg.tar.gz. Needs the package's dependencies on the path.
set -euo pipefail
cd "$(dirname "$0")/.."
data_tar=$1 runs=$2 budget=$3
deadline=$(( $(date +%s) + budget ))
OUT=${OUT:-/tmp/epbt-gpu-indicative}
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
mkdir -p "$OUT" "$work/runs"
export PYTHONUNBUFFERED=1
toy=()
if [[ "${4:-}" == "--cpu" ]]; then  # ResNet-8, 2 generations of 1 epoch on 256 images, 200 test images
    toy=(--model resnet8 --device cpu --generations 2 --epochs-per-generation 1 --set data.train_subset=256
         --set data.val_size=100 --set data.test_subset=200 --set "train.lr_milestones=[1]")
fi

tar xzf "$data_tar" -C "$work"
if compgen -G "$runs.*" > /dev/null; then
    cat "$runs".* | tar xf - -C "$work/runs"
fi

finished() {  # NAME: whether runs/NAME has trained all its generations
    [[ -f "$work/runs/$1/config.yaml" ]] || return 1
    local shown
    shown=$("$PYTHON" -m cli.main show "$work/runs/$1")
    grep -q ": finished$" <<< "$shown"
}

train() {  # NAME: resume runs/NAME, or start it from its config; stop it at the deadline
    local run_dir="$work/runs/$1" left=$(( deadline - $(date +%s) )) status=0
    if finished "$1"; then
        return
    elif (( left < 60 )); then
        echo "$1: no time left in this chunk"
        return
    fi
    if [[ -f "$run_dir/config.yaml" ]]; then
        timeout -s TERM "$left" "$PYTHON" -m cli.main resume "$run_dir" || status=$?
    else
        timeout -s TERM "$left" "$PYTHON" -m cli.main evolve --config "benchmarks/gpu_indicative/$1.yaml" \
            --data-dir "$work/cifar10-jpeg" --run-dir "$run_dir" "${toy[@]}" || status=$?
    fi
    if (( status != 0 && status != 124 )); then  # 124: stopped at the deadline, as planned
        echo "$1: exit status $status" >&2
        exit "$status"
    fi
}

train baseline1
train epbt
left_out=(--exclude=tensorboard)
for name in baseline1 epbt; do
    if [[ -f "$work/runs/$name/config.yaml" ]]; then
        "$PYTHON" -m cli.main show "$work/runs/$name"
    fi
    if finished "$name"; then
        left_out+=("--exclude=./$name/checkpoints")
    fi
done
tar cf - -C "$work/runs" "${left_out[@]}" . | split -b 15M -d -a 1 - "$OUT/gpu_runs.tar."
ls -l "$OUT"/gpu_runs.tar.*
