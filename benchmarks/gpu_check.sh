#!/usr/bin/env bash
# The GPU check in one command, for a GPU machine without TensorFlow or a package registry (e.g.
# the H200 with JAX and PyTorch): installs Keras from the wheels in benchmarks/wheels (offline;
# `make gpu-wheels` fills the folder here, 2.8 MiB, carried with the tree), makes synthetic crops
# of BBBC021's geometry on the spot, and measures the three networks (benchmarks/gpu_check.py).
# Writes gpu_check.json and gpu_check.md to $OUT (default results/gpu_check).
#
#   bash benchmarks/gpu_check.sh                 # on the GPU machine: ~7 of at most 8 minutes
#   bash benchmarks/gpu_check.sh --cpu-smoke     # the same code on tiny sizes on the CPU (CI)
#
# Other options go to gpu_check.py (--budget SECONDS, --backends jax torch, --networks ...).
# PYTHON picks the interpreter (default: /opt/torch/.venv/bin/python3 where it exists, else
# .venv/bin/python, else python3); WHEELS the wheel folder; --no-install skips the installation.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
smoke=0
install=1
args=()
for arg in "$@"; do
  case "$arg" in
    --cpu-smoke) smoke=1; args+=("$arg") ;;
    --no-install) install=0 ;;
    *) args+=("$arg") ;;
  esac
done
if [ -z "${PYTHON:-}" ]; then
  for candidate in /opt/torch/.venv/bin/python3 "$root/.venv/bin/python" python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
OUT="${OUT:-$root/results/gpu_check}"
WHEELS="${WHEELS:-$here/wheels}"
mkdir -p "$OUT"
echo "gpu_check: python $PYTHON ($("$PYTHON" --version 2>&1)); results to $OUT"
site=""
if [ "$install" = 1 ] && ls "$WHEELS"/keras-*.whl >/dev/null 2>&1; then
  # into a folder of its own (no write to the machine's environment), without dependencies:
  # Keras' others (numpy, h5py, ml-dtypes, rich, absl-py, packaging) are there already
  site="$(mktemp -d)/site"
  "$PYTHON" -m pip install --quiet --no-index --no-deps --disable-pip-version-check --target "$site" "$WHEELS"/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  echo "gpu_check: installed $(cd "$WHEELS" && ls ./*.whl | tr '\n' ' ')into $site"
elif [ "$smoke" = 0 ] && ! "$PYTHON" -c "import keras" >/dev/null 2>&1; then
  echo "gpu_check: Keras is not importable by $PYTHON and $WHEELS has no wheels: run 'make gpu-wheels' on a machine with PyPI and copy benchmarks/wheels along" >&2
  exit 2
fi
if [ "$smoke" = 1 ]; then
  export CUDA_VISIBLE_DEVICES="" JAX_PLATFORMS=cpu
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu_check: GPU /' || true
cd "$root"
exec "$PYTHON" "$here/gpu_check.py" --out "$OUT" --python "$PYTHON" "${args[@]}"
