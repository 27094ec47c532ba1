#!/usr/bin/env bash
# The PyTorch anchor of `cargo bench -p trainer --bench vs_pytorch`, in a venv outside the repo:
# torch 2.9.1 (PyPI's Linux wheel; it pulls the CUDA 12 libraries it links against, about 3 GB,
# although the benchmark runs on CPU), transformers 4.57.3, gguf 0.17.1 and accelerate 1.12.0 (to read the GGUF).
set -euo pipefail
venv="${TORCH_VENV:-$HOME/.cache/torch-venv}"
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "torch==2.9.1" "transformers==4.57.3" "gguf==0.17.1" "accelerate==1.12.0" "numpy<3"
echo "PyTorch anchor ready: $venv/bin/python"
