#!/usr/bin/env bash
# The GPU side of `scripts/gpu-check.sh`: copied into the bundle as dist/gpu-check/device.sh and
# run from the repository root on the GPU host (`bash dist/gpu-check/device.sh`), which has an
# NVIDIA driver, python3 with PyTorch and transformers, and the CUDA 13 libraries as PyPI wheels,
# but no network and no Rust. In one run of at most GPU_CHECK_BUDGET seconds (default 480):
#
#   1. unpacks the CUDA trainer (trainer.xz; xz, or Python's lzma where xz is missing) and puts
#      the CUDA 13 libraries of the nvidia wheels on LD_LIBRARY_PATH;
#   2. correctness: `trainer gpu-check correctness --device cuda` (CUDA against the CPU);
#   3. a 30-step run of trainer/configs/tiny-cpu.toml on CUDA into SQLite (metrics finite, rows
#      landed: checked by the report);
#   4. for qwen2-0.5b, then smollm2-135m: `trainer gpu-check speed` in bf16, the same random-init
#      weights exported as a Hugging Face checkpoint, and PyTorch eager (transformers) timed on
#      them with the same prompt, batch and lengths (gpu_torch_bench.py bench); GPU memory
#      sampled with nvidia-smi around each process;
#   5. the report: $OUT/gpu-report.json and $OUT/gpu-report.md (gpu_torch_bench.py report),
#      $OUT/device.log, and the raw files in $OUT/details.tar.gz.
#
# Each phase gets what is left of the budget (at most its own cap), so the report is written
# even when a phase hangs or fails; a failed phase is recorded, not fatal. Settings:
# GPU_CHECK_BUDGET (480 s), GPU_CHECK_ROWS (16), GPU_CHECK_PROMPT (64), GPU_CHECK_NEW (128),
# GPU_CHECK_REPEAT (3), GPU_CHECK_SHAPES ("qwen2-0.5b smollm2-135m"), GPU_CHECK_STEPS (30, the
# tiny run's), GPU_CHECK_DEVICE (cuda; the test runs the whole script with cpu, where there is
# no GPU and no PyTorch), GPU_CHECK_WORK (scratch folder, default /tmp/gpu-check).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="${OUT:-$here/out}"
work="${GPU_CHECK_WORK:-/tmp/gpu-check}"
budget="${GPU_CHECK_BUDGET:-480}"
rows="${GPU_CHECK_ROWS:-16}"
prompt="${GPU_CHECK_PROMPT:-64}"
new="${GPU_CHECK_NEW:-128}"
repeat="${GPU_CHECK_REPEAT:-3}"
shapes="${GPU_CHECK_SHAPES:-qwen2-0.5b smollm2-135m}"
steps="${GPU_CHECK_STEPS:-30}"
device="${GPU_CHECK_DEVICE:-cuda}"
# Seconds kept back for the report.
reserve=20
start=$SECONDS
mkdir -p "$out" "$work"
rm -rf "${work:?}"/*
details="$work/details"
mkdir -p "$details"
exec > >(tee "$out/device.log") 2>&1
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"

log() { echo "[$((SECONDS - start)) s] $*"; }

# Seconds for a phase: its cap, or what is left of the budget before the report.
slot() {
    local left=$((budget - reserve - (SECONDS - start)))
    [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}

# phase NAME CAP COMMAND...: runs the command under its slot, records its exit status in
# details/phases.tsv (124: out of time; "skipped": no time left).
phase() {
    local name=$1 cap=$2 t
    shift 2
    t=$(slot "$cap")
    if [ "$t" -lt 5 ]; then
        log "$name: skipped, no time left"
        printf '%s\tskipped\t0\n' "$name" >> "$details/phases.tsv"
        return 1
    fi
    log "$name (at most $t s): $*"
    local t0=$SECONDS rc
    timeout --kill-after=5 "$t" "$@"
    rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >> "$details/phases.tsv"
    log "$name: exit $rc after $((SECONDS - t0)) s"
    return "$rc"
}

# GPU memory in use, MiB, sampled every 200 ms into FILE while the command runs.
with_memory() {
    local file=$1 sampler
    shift
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$file" 2>/dev/null &
    sampler=$!
    "$@"
    local rc=$?
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    return "$rc"
}

# 1. The binary and its libraries.
bin="$work/trainer"
if command -v xz > /dev/null; then
    xz -dc "$here/trainer.xz" > "$bin"
else
    "$py" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$here/trainer.xz" "$bin"
fi
chmod +x "$bin"
# The wheels' library folders: nvidia/cu13/lib (CUDA 13 wheels) or one nvidia/NAME/lib per
# library (older layouts); then the driver's and a toolkit's, where present.
cu13=$("$py" - <<'EOF'
import glob, os
dirs = []
try:
    import nvidia
    for root in list(nvidia.__path__):
        dirs += [os.path.join(root, "cu13", "lib")] + sorted(glob.glob(os.path.join(root, "*", "lib")))
except ImportError:
    pass
dirs += ["/usr/local/nvidia/lib64", "/usr/local/cuda/lib64"]
print(":".join(d for d in dict.fromkeys(dirs) if os.path.isdir(d)))
EOF
)
export LD_LIBRARY_PATH="${cu13}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi > "$details/nvidia-smi.txt" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$details/gpu.txt" 2>&1
ldd "$bin" > "$details/ldd.txt" 2>&1
grep -E 'cuda|cublas|curand|not found' "$details/ldd.txt"
cp "$here/MANIFEST" "$details/" 2>/dev/null
"$py" -c 'import torch, transformers, json; print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "cuda": torch.version.cuda}))' \
    > "$details/python.json" 2>&1

# 2. Correctness.
phase correctness 150 "$bin" gpu-check correctness --device "$device" --out "$details"

# 3. Thirty steps of the tiny config on CUDA into SQLite.
phase tiny-run 150 "$bin" train --config trainer/configs/tiny-cpu.toml --device "$device" \
    --steps "$steps" --run-dir "$work/tiny-run" > "$details/tiny-run.log" 2>&1
cp "$work/tiny-run/metrics.jsonl" "$details/tiny-run-metrics.jsonl" 2>/dev/null
cp "$work/tiny-run/rollouts.sqlite" "$details/tiny-run.sqlite" 2>/dev/null
tail -n 5 "$details/tiny-run.log"

# 4. Speed, side by side with PyTorch.
for shape in $shapes; do
    with_memory "$details/mem-candle-$shape.txt" \
        phase "speed-$shape" 150 "$bin" gpu-check speed --shape "$shape" --device "$device" \
        --precision bf16 --rows "$rows" --prompt "$prompt" --new "$new" --repeat "$repeat" \
        --out "$details"
    phase "export-$shape" 60 "$bin" gpu-check export --shape "$shape" --out "$work/hf-$shape"
    rust_json="$details/speed-$shape-bf16.json"
    if [ -f "$rust_json" ] && [ -f "$work/hf-$shape/model.safetensors" ]; then
        with_memory "$details/mem-torch-$shape.txt" \
            phase "torch-$shape" 150 "$py" "$here/gpu_torch_bench.py" bench \
            --model "$work/hf-$shape" --rust-json "$rust_json" \
            --device "$device" --out "$details/torch-$shape.json"
    fi
    rm -rf "${work:?}/hf-$shape"
done

# 5. The report.
log "report"
"$py" "$here/gpu_torch_bench.py" report --details "$details" --steps "$steps" --out "$out"
tar -czf "$out/details.tar.gz" -C "$work" details
log "done in $((SECONDS - start)) s; $out: $(ls "$out" | tr '\n' ' ')"
