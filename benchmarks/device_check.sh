#!/usr/bin/env bash
# The GPU checks in one go, for a lent CUDA machine that has torch but not this project's other
# dependencies and cannot reach PyPI or ../shared. Prepare, on the development machine:
#   pip download --only-binary=:all: --python-version 3.12 --no-deps -d .whl \
#       captum sqlalchemy alembic snowballstemmer mako
#   mkdir -p .devcheck && cp -r ../shared/datasets/sst2 .devcheck/
# then run this with `.whl` and `.devcheck` carried along (both are git-ignored). It prints
# gpu_check's JSON lines (our training against a bare nn.LSTM loop, packing, fp32, attributions
# on CUDA) and the `-m gpu` tests.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. LSTM_DEMO_DATASETS=.devcheck GRADIO_ANALYTICS_ENABLED=False
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m benchmarks.gpu_check --data .devcheck/sst2 --epochs 4
python3 -m pytest -q -m gpu -p no:cacheprovider \
    tests/test_model.py tests/test_train.py tests/test_explain.py tests/test_gates.py
