#!/usr/bin/env bash
# The looped peers of bench/meta.py, installed into the venv for the bench only: never dependencies of gmhf.
#
#   bash bench/peers/install.sh [PYTHON]     (default .venv/bin/python)
#
# Idempotent, and it always exits 0: a peer that fails to install is reported by bench/meta.py, which then
# measures the others. Nothing here may change torch, so every install is --no-deps.
#
# higher 0.2.1: pure Python, imports only torch.
# learn2learn 0.2.0: only an sdist whose Cython-generated C files predate Python 3.11, so they are
# regenerated with Cython 3 before building. Its other requirements (torchvision, gym, qpth, gsutil, ...)
# are not installed: the bench loads only `learn2learn.algorithms.MAML` (see `learn2learn_maml` in
# bench/meta_peers.py), and PyPI's torchvision wheels are CUDA builds that cannot load against CPU torch anyway.
set -u
PY=${1:-.venv/bin/python}
case $PY in */*) [[ $PY = /* ]] || PY="$PWD/$PY" ;; esac  # absolute: the build runs elsewhere

installed() { "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$1" 2>/dev/null; }

installed higher || "$PY" -m pip install --quiet --no-deps higher==0.2.1 || echo "install.sh: higher failed to install" >&2

if ! installed learn2learn; then
    (
        set -e
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        "$PY" -m pip install --quiet 'cython>=3' 'setuptools>=70.1'  # 70.1: bdist_wheel built in
        "$PY" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" learn2learn==0.2.0
        tar -xzf "$work"/learn2learn-0.2.0.tar.gz -C "$work"
        cd "$work"/learn2learn-0.2.0
        rm -rf .eggs learn2learn/data/*.c  # a bundled Cython 0.29 egg and C files generated for Python <= 3.8
        for source in learn2learn/data/*.pyx; do "$PY" -m cython -3 "$source"; done
        "$PY" -m pip install --quiet --no-deps --no-build-isolation .
    ) || echo "install.sh: learn2learn failed to install; bench/meta.py measures higher only" >&2
fi
exit 0
