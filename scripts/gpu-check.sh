#!/usr/bin/env bash
# Packs the GPU check (docs/gpu.md, "Checking on a GPU"): runs here, on a machine without a GPU.
#
#   bash scripts/gpu-check.sh                   # builds dist/trainer-cuda (scripts/build-cuda.sh)
#   bash scripts/gpu-check.sh --no-cuda-build   # packs the dist/trainer-cuda already built
#   bash scripts/gpu-check.sh --binary PATH     # packs another build of `trainer`
#   (--out DIR: the bundle's folder, relative to the repository root, instead of dist/gpu-check)
#
# Writes dist/gpu-check/ (git-ignored): trainer.xz (the binary, stripped and xz-compressed),
# device.sh (scripts/gpu-device.sh), gpu_torch_bench.py and MANIFEST (the binary's sha256, the
# commit, the date). The bundle must stay under 60 MiB: it travels to the GPU host with the
# working tree, 64 MiB in all. Prints the device command. GPU_CHECK_XZ_LEVEL sets the xz preset
# (default 9; tests use 0), GPU_CHECK_MAX_MIB the size limit (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=""
build=1
bundle=dist/gpu-check
while [ $# -gt 0 ]; do
    case "$1" in
        --binary)
            binary="${2:?--binary needs a path}"
            shift 2
            ;;
        --out)
            bundle="${2:?--out needs a folder}"
            shift 2
            ;;
        --no-cuda-build)
            build=0
            shift
            ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *)
            echo "gpu-check: unknown argument $1 (see --help)" >&2
            exit 2
            ;;
    esac
done
if [ -z "$binary" ]; then
    [ "$build" = 1 ] && bash scripts/build-cuda.sh
    binary=dist/trainer-cuda
fi
[ -x "$binary" ] || {
    echo "gpu-check: no executable at $binary (build it with scripts/build-cuda.sh)" >&2
    exit 1
}

limit=$((${GPU_CHECK_MAX_MIB:-60} * 1024 * 1024))
rm -rf "$bundle"
mkdir -p "$bundle"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Stripping a stripped binary changes nothing; a debug build loses its symbols.
strip -o "$work/trainer" "$binary" 2>/dev/null || cp "$binary" "$work/trainer"
xz -T0 "-${GPU_CHECK_XZ_LEVEL:-9}" -c "$work/trainer" > "$bundle/trainer.xz"
cp scripts/gpu-device.sh "$bundle/device.sh"
cp scripts/gpu_torch_bench.py "$bundle/gpu_torch_bench.py"
{
    echo "binary: $binary"
    echo "sha256: $(sha256sum "$work/trainer" | cut -d' ' -f1)"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "packed: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cuda: $(if readelf -d "$work/trainer" 2>/dev/null | grep -q 'libcuda\.so'; then echo yes; else echo 'no (this build cannot open a GPU)'; fi)"
} > "$bundle/MANIFEST"

size=$(du -cb "$bundle"/* | tail -n 1 | cut -f1)
echo "packed $bundle: $(ls "$bundle" | tr '\n' ' ')— $((size / 1024 / 1024)) MiB ($size bytes)"
cat "$bundle/MANIFEST"
if [ "$size" -ge "$limit" ]; then
    echo "gpu-check: the bundle is $size bytes, over the ${GPU_CHECK_MAX_MIB:-60} MiB limit" >&2
    exit 1
fi
cat <<EOF

On the GPU host, one call of the device tool (about 8 minutes; the report comes back in \$OUT):
  run  carry=["$bundle"]  timeout_s=600  command="bash $bundle/device.sh"
then read gpu-report.md and put its tables into docs/gpu.md.
EOF
