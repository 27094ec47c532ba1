#!/usr/bin/env bash
# A CUDA 13.0 toolkit for `cargo build --features cuda` on a machine without a GPU or a driver,
# from NVIDIA's PyPI wheels (pinned versions, about 675 MB of downloads, 1.2 GB unpacked), into
# a folder outside the repo (default ~/.cache/cuda13; set CUDA_TOOLKIT_DIR to move it).
#
# The wheels unpack into one toolkit-shaped root (`nvidia/cu13/{bin,nvvm,include,lib}`) but lack
# two things the link step needs, which this script adds:
# - the unversioned `lib*.so` names (`libcublas.so -> libcublas.so.13`, ...);
# - `lib/stubs/libcuda.so`, the driver library. The real one comes with the NVIDIA driver on the
#   GPU host; the stub only satisfies the linker. It exports every `cu*` entry point of the
#   cudarc version in Cargo.lock, each returning CUDA_ERROR_UNKNOWN (999), and its soname is
#   `libcuda.so.1` so the binary asks for the driver's library at run time. Never put the stub on
#   a GPU host's library path.
#
# CUDA 13.0, not newer: the H100/H200 hosts' driver (580, CUDA 13.0) cannot JIT PTX from a newer
# nvcc (CUDA_ERROR_UNSUPPORTED_PTX_VERSION).
#
# Prints the environment to build with; `scripts/build-cuda.sh` uses it.
set -euo pipefail
root="${CUDA_TOOLKIT_DIR:-$HOME/.cache/cuda13}"
cuda="$root/nvidia/cu13"
py="${PYTHON:-/usr/bin/python3}"

if [ ! -x "$cuda/bin/nvcc" ] || [ ! -e "$cuda/lib/libcublas.so.13" ]; then
    mkdir -p "$root"
    "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$root" --upgrade \
        "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-crt==13.0.88" "nvidia-nvvm==13.0.88" \
        "nvidia-cuda-runtime==13.0.88" "nvidia-cuda-cccl==13.0.85" \
        "nvidia-cuda-nvrtc==13.0.88" "nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.0.35"
fi
test -x "$cuda/bin/nvcc" || { echo "cuda-toolkit: no nvcc under $cuda/bin" >&2; exit 1; }

# Unversioned names for the linker.
for lib in "$cuda"/lib/lib*.so.*; do
    base="${lib##*/}"
    name="${base%%.so.*}.so"
    [ -e "$cuda/lib/$name" ] || ln -s "$base" "$cuda/lib/$name"
done

# The driver stub, from the `cu*` functions cudarc binds (its sources are in cargo's registry once
# `cargo fetch` has run with the feature's dependencies in Cargo.lock).
stub="$cuda/lib/stubs/libcuda.so"
if [ ! -e "$stub" ]; then
    cargo fetch --locked >/dev/null
    version=$(awk '/^name = "cudarc"$/{getline; gsub(/version = |"/, ""); print; exit}' \
        "$(dirname "$0")/../Cargo.lock")
    [ -n "$version" ] || { echo "cuda-toolkit: cudarc is not in Cargo.lock" >&2; exit 1; }
    src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$version" | head -n 1)
    mkdir -p "$cuda/lib/stubs"
    work=$(mktemp -d)
    grep -rhoE '\bcu[A-Z][A-Za-z0-9_]*\b' "$src/src/driver/sys" | sort -u |
        awk '{print "int " $1 "(void) { return 999; }"}' > "$work/stub.c"
    gcc -shared -fPIC -o "$stub" -Wl,-soname,libcuda.so.1 "$work/stub.c"
    ln -sf libcuda.so "$cuda/lib/stubs/libcuda.so.1"
    echo "cuda-toolkit: driver stub with $(wc -l < "$work/stub.c") entry points from cudarc $version"
    rm -rf "$work"
fi

"$cuda/bin/nvcc" --version | tail -n 2
echo "CUDA_HOME=$cuda"
