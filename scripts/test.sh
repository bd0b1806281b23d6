#!/usr/bin/env bash
# The one test command (README, and .ci/run). On a fresh Debian machine as root it installs what
# the tests need when missing: Xvfb + Mesa (software OpenGL) through apt, then this package with
# its test extra through pip. Then it runs the whole pytest suite under a virtual display.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 \
libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-cursor0 \
libdbus-1-3 libfontconfig1"

if ! command -v xvfb-run >/dev/null 2>&1 || ! ldconfig -p | grep -q libxkbcommon-x11; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Xvfb and Mesa (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null
  else
    echo "xvfb-run not found: install Xvfb and Mesa ($APT_PACKAGES) as root, then rerun." >&2
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
echo "== installing napari-cryomat with its test extra (pip)"
# one Qt binding for napari (qtpy) and pytest-qt alike: two in one process crash. PyQt6 is the default;
# QT_API=pyqt5 installs the pyqt5 extra (napari < 0.10, which still accepts PyQt5) and runs on it
export QT_API="${QT_API:-pyqt6}"
case "$QT_API" in
  pyqt6|pyqt5) ;;
  *) echo "QT_API=$QT_API: the suite runs on pyqt6 (default) or pyqt5." >&2; exit 2 ;;
esac
"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[$QT_API,test]"

echo "== real-file corpus (public EM test files from PyPI, cached in .cache/corpus or \$CRYOMAT_CORPUS_DIR)"
"$PYTHON" tests/io/corpus.py || echo "   not available: the corpus tests will skip and say why"

echo "== lint (ruff, settings in pyproject.toml)"
"$PYTHON" -m ruff check .

echo "== running the test suite under Xvfb"
export QT_QPA_PLATFORM=xcb
export PYTEST_QT_API="$QT_API"
# two worker processes (pytest-xdist), one test file per worker at a time so module fixtures are built
# once: the suite takes about half the time on CI's two cores. CRYOMAT_TEST_WORKERS=0 runs in one process.
WORKERS="${CRYOMAT_TEST_WORKERS:-2}"
XDIST=()
if [ "$WORKERS" != "0" ]; then XDIST=(-n "$WORKERS" --dist loadfile); fi
exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PYTHON" -m pytest -p no:cacheprovider "${XDIST[@]}" "$@"
