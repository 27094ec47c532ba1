#!/usr/bin/env bash
# Builds `trainer` with `--features cuda` on a machine without a GPU, for NVIDIA Hopper (sm_90:
# H100/H200; set CUDA_COMPUTE_CAP=80 for A100), and leaves it at dist/trainer-cuda (git-ignored;
# never commit it: it is ~85 MB).
#
# The toolkit comes from PyPI wheels (`scripts/cuda-toolkit.sh`, CUDA 13.0). The kernels are
# compiled to PTX for the compute capability and JIT-compiled by the driver on first use. A cold
# build took 13 min on 2 idle cores here (26 min beside another build), most of it candle's
# kernels; its target folder is separate
# from the CPU build's (CUDA_TARGET_DIR, default ~/.cache/rlvr-target-cuda) so neither rebuilds
# the other.
#
# The binary links libcuda.so.1 (the driver's), libcublas.so.13 (and through it
# libcublasLt.so.13), libcurand.so.10 and libcudart.so.13 dynamically, with no RUNPATH: on the GPU
# host put the CUDA 13 libraries on LD_LIBRARY_PATH (README, "Running on a GPU"). It also runs
# on the CPU (`--device cpu`) wherever those libraries load.
set -euo pipefail
cd "$(dirname "$0")/.."
toolkit_out=$(bash scripts/cuda-toolkit.sh)
echo "$toolkit_out"
cuda_home=$(echo "$toolkit_out" | sed -n 's/^CUDA_HOME=//p')

export CUDA_HOME="$cuda_home"
export PATH="$CUDA_HOME/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
export CARGO_TARGET_DIR="${CUDA_TARGET_DIR:-$HOME/.cache/rlvr-target-cuda}"
cargo build --locked --release -p trainer --features cuda --bin trainer

mkdir -p dist
# Without the release profile's debug info: 84 MB instead of 250 MB.
strip -o dist/trainer-cuda "$CARGO_TARGET_DIR/release/trainer"
echo "built dist/trainer-cuda for compute capability $CUDA_COMPUTE_CAP; it needs at run time:"
readelf -d dist/trainer-cuda | sed -n 's/.*(NEEDED).*\[\(lib\(cuda\|cublas\|curand\|cudart\)[^]]*\)\]/  \1/p'
