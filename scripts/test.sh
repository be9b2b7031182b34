#!/usr/bin/env bash
# Runs the whole test suite. The parity tests compare against Debian's torchvision (the real reference) and the data
# tests read Debian's Fashion-MNIST, so both packages are installed first when missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null || [ ! -d /usr/share/datasets/fashion-mnist ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends python3-torchvision dataset-fashion-mnist
fi
mvn -B verify "$@"
