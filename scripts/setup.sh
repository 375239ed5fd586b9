#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine with Node >= 20 for torch-lora: a compiler, cmake, libtorch
# (Debian's libtorch-dev when no other libtorch is found), then npm install (builds the addon and the
# TypeScript). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  [ $apt_updated = 1 ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
[ ${#missing[@]} = 0 ] || { echo "setup: installing ${missing[*]}"; apt_install "${missing[@]}"; }

has_torch() {
  [ -n "${LIBTORCH:-}" ] && return 0
  [ -n "${Torch_DIR:-}" ] && return 0
  python3 -c "import torch" >/dev/null 2>&1 && return 0
  ls /usr/lib/*/cmake/Torch/TorchConfig.cmake >/dev/null 2>&1 && return 0
  return 1
}
if ! has_torch; then
  echo "setup: no libtorch found; installing Debian's libtorch-dev"
  apt_install libtorch-dev
fi

# Debian's libtorch calls BLAS through libblas.so.3, which apt's alternatives resolve to the reference
# (netlib) BLAS unless an optimized one is installed: a LoRA step is 7-23x slower on it. OpenBLAS's
# pthread build registers itself as libblas.so.3 (priority 100). `torch-lora info` says which is loaded.
if dpkg-query -W -f='${Status}\n' 'libtorch[0-9]*' 2>/dev/null | grep -q 'ok installed'; then
  if ! dpkg-query -W -f='${Status}\n' libopenblas0-pthread 2>/dev/null | grep -q 'ok installed'; then
    echo "setup: installing OpenBLAS (libopenblas0-pthread) for Debian's libtorch"
    apt_install libopenblas0-pthread
  fi
  blas="$(readlink -f "/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/libblas.so.3" 2>/dev/null || true)"
  case "$blas" in
    *openblas*|*blis*|*mkl*) ;;
    *) echo "setup: warning: libblas.so.3 is ${blas:-missing}, not OpenBLAS; pick it with: sudo update-alternatives --config libblas.so.3-$(gcc -dumpmachine)" >&2 ;;
  esac
fi

# Data-parallel training (torch-lora train --nproc-per-node) compiles against c10d's ProcessGroupGloo.hpp,
# which includes gloo's headers: Debian ships them apart from libtorch-dev, in libgloo-dev (headers only are
# needed; libtorch already links libgloo). Without them the addon builds without distributed support.
if [ -f /usr/include/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp ] && [ ! -f /usr/include/gloo/algorithm.h ]; then
  echo "setup: installing gloo's headers (libgloo-dev) for data-parallel training"
  apt_install libgloo-dev
fi

# npm install (not npm ci): npm 11 rejects lock files that omit other platforms' optional packages.
# --no-save: install what package-lock.json says without rewriting it (npm would fill in those optional
# packages and leave a fresh clone with a modified lock file).
npm install --no-save --no-audit --no-fund
