#!/usr/bin/env bash
# Validates the Kubernetes manifests offline against the API schemas bundled in PyPI's
# kubernetes-validate (installed into a venv outside the repository on first use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${DEPLOY_VALIDATE_VENV:-$HOME/.cache/deploy-validate-venv}"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q "kubernetes-validate==1.*"
fi
"$venv/bin/kubernetes-validate" --strict -k 1.30.0 "$here"/k8s/deployment.yaml "$here"/k8s/service.yaml \
    "$here"/k8s/hpa.yaml "$here"/k8s/networkpolicy.yaml
