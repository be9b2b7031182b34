#!/usr/bin/env bash
# Runs the whole test suite. The parity tests compare against Debian's torchvision (the real reference), the ONNX
# tests check exports with Debian's python3-onnx, the report test renders report.html in Debian's headless chromium,
# and the data tests read Debian's Fashion-MNIST, so those packages are installed first when missing (root or sudo),
# with gperftools' tcmalloc, which the launcher preloads when the system has it (LauncherTest runs predict on it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! /usr/bin/python3 -c "import torch, torchvision, onnx" 2>/dev/null || [ ! -d /usr/share/datasets/fashion-mnist ] \
    || [ ! -x /usr/bin/chromedriver ] || ! compgen -G "/usr/lib/*/libtcmalloc_minimal.so.4" >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends python3-torchvision python3-onnx dataset-fashion-mnist \
    chromium chromium-driver libtcmalloc-minimal4
fi
# The slowest torchvision references are built on the second core while Maven compiles on the first (the tests wait
# on the same lock files, or build them themselves if this fails).
/usr/bin/python3 scripts/reference/prebuild.py &
mvn -B verify "$@"
wait || true
