#!/usr/bin/env bash
# The one test command (README "Test"). It installs what the tests need, builds the
# compiled twins in place, and runs the whole suite twice: compiled, then pure
# (PYIKED_NO_EXTENSIONS=1). As root it also installs the Debian packages the interop
# tests need (strongSwan, tshark, ...); without root those tests are skipped.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "$(id -u)" = 0 ]; then
    bash scripts/install-debian-deps.sh
    export PYIKED_REQUIRE_INTEROP=1  # as root the interop tests must run, never skip
fi
"$PY" -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e ".[test]"
"$PY" setup.py -q build_ext --inplace

status=0
echo "== compiled run"
PYIKED_EXPECT_EXTENSIONS=1 "$PY" -m pytest "$@" || status=1
echo "== pure run (PYIKED_NO_EXTENSIONS=1)"
PYIKED_NO_EXTENSIONS=1 "$PY" -m pytest "$@" || status=1
exit $status
