#!/usr/bin/env bash
# The GPU checks of one lent device session, in one call (README, "On a GPU"): the GPU tests, the
# CUDA renderer's per-stage benchmark with prepare() of a 512x512x300 CT, and the fine-tuning
# issue's fine-tune of the sample (1.5 mm, CT-Bone and CT-Chest-Contrast-Enhanced) with a 60 s
# budget, scored against dvr; 40 steps of `renderfm train` with the shipped config on the sample (a
# timing, not a model: it trains and scores on one scan). Each step has its own time limit, so one
# failure leaves the others.
#
#     bash Testing/bench/device_checks.sh OUT_DIR [WHEELS_DIR]
#
# Runs from the repository root under the machine's python3 (torch, CuPy, numpy, safetensors
# there); WHEELS_DIR holds the wheels that machine lacks (SimpleITK, pytorch-msssim), installed
# into a temporary site folder. Writes OUT_DIR/log.txt, OUT_DIR/quality/ (bench_quality.py) and
# OUT_DIR/train_metrics.csv.
set -u
out=${1:?usage: device_checks.sh OUT_DIR [WHEELS_DIR]}
wheels=${2:-}
mkdir -p "$out"
log="$out/log.txt"
export PYTHONUNBUFFERED=1
if [ -n "$wheels" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/renderfm_site "$wheels"/*.whl || exit 1
    export PYTHONPATH="/tmp/renderfm_site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"

step() {  # step SECONDS TITLE COMMAND...: run with a limit, log it, never stop the script
    local limit=$1 title=$2
    shift 2
    echo "=== $title (limit ${limit} s) $(date -u +%T)" | tee -a "$log"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    echo "=== $title: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$log"
}

step 30 "machine" bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm \
    --format=csv; nproc; python3 -c "import sys, torch, cupy, numpy; print(sys.version.split()[0],
    \"torch\", torch.__version__, \"cupy\", cupy.__version__, \"numpy\", numpy.__version__,
    torch.cuda.get_device_name())"'
step 150 "GPU tests" python3 -m pytest -q -m gpu -p no:cacheprovider Testing/test_cuda_gpu.py \
    Testing/test_finetune.py \
    Testing/test_network.py Testing/test_transfer.py Testing/test_groups_render.py
step 100 "bench_gpu" python3 Testing/bench/bench_gpu.py --gaussians 0.1 1 4 \
    --sizes 512x512 1920x1080 --runs 10 --backward
step 200 "fine-tune on the GPU" python3 Testing/bench/bench_quality.py --scans sample \
    --spacing 1.5 --presets CT-Bone CT-Chest-Contrast-Enhanced --budget-s 60 --device cuda \
    --out "$out/quality"

run=$(mktemp -d)
python3 - "$run" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
ct = {"ct": str(Path("Resources/sample/ct.nii.gz").resolve()), "presets": ["CT-Bone"]}
(run / "manifest.json").write_text(json.dumps({"scans": [ct, {**ct, "heldout": True}]}))
config = json.loads(Path("Resources/weights/renderfm-local.json").read_text())["about"]["train_config"]
(run / "config.json").write_text(json.dumps({**config, "steps": 40, "eval_every": 20}))
PY
step 150 "renderfm train on the GPU" python3 -m RenderFMLib.cli train "$run/manifest.json" \
    --config "$run/config.json" --out "$run/out" --device cuda
cp "$run/out/metrics.csv" "$out/train_metrics.csv" 2>/dev/null
