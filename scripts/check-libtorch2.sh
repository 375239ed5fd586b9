#!/usr/bin/env bash
# One source, two libtorch majors: builds this working tree against another libtorch (e.g. a 2.x while
# the main build/ uses the system's 1.13) in a separate folder, so build/ stays untouched, and runs the
# jest suite there.
#
#   scripts/check-libtorch2.sh TORCH_DIR [WORKDIR] [-- jest args...]
#
# TORCH_DIR: the folder holding TorchConfig.cmake (<libtorch>/share/cmake/Torch). Defaults: $Torch_DIR,
# then $LIBTORCH/share/cmake/Torch, then the PyTorch of $PYTHON (default python3).
# WORKDIR: where the copy and its build go (default ${TMPDIR:-/tmp}/torch-lora-libtorch2); kept between
# runs, so a second run rebuilds only what changed.
# TL_BUILD_LOCK=/path/to/lockfile serializes the native build with others' (flock).
#
# Getting a libtorch 2.x (CPU is enough):
#   - a pip PyTorch in a virtual environment (no CUDA download):
#       python3 -m venv /tmp/py2 && /tmp/py2/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
#       PYTHON=/tmp/py2/bin/python scripts/check-libtorch2.sh
#   - or an unpacked libtorch zip from https://pytorch.org/get-started/locally/ (C++/Java, "cxx11 ABI"):
#       LIBTORCH=/opt/libtorch scripts/check-libtorch2.sh
#   - a CUDA PyTorch compiles the CUDA-only code (TL_WITH_CUDA) even on a machine without a GPU; CMake
#     needs the CUDA toolkit it was built with. From pip (toolkit under site-packages/nvidia/cu13; FindCUDA
#     wants unversioned libcudart.so etc., so link them once):
#       pip install --no-deps torch nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-cccl nvidia-cuda-crt \
#         nvidia-nvvm nvidia-cublas nvidia-cuda-nvrtc nvidia-nvtx nvidia-cusparse nvidia-cufft nvidia-curand \
#         nvidia-cusolver nvidia-nvjitlink nvidia-cudnn-cu13 nvidia-nccl-cu13 nvidia-cusparselt-cu13 \
#         nvidia-cufile nvidia-nvshmem-cu13 nvidia-cuda-cupti typing_extensions
#       CUDAToolkit_ROOT=.../nvidia/cu13 PATH=.../nvidia/cu13/bin:$PATH \
#         LD_LIBRARY_PATH=<every site-packages/nvidia/*/lib> PYTHON=... scripts/check-libtorch2.sh
#     (the tests then run on the CPU, cuda.isAvailable() false).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

TORCH_DIR=""
WORK="${TMPDIR:-/tmp}/torch-lora-libtorch2"
if [[ $# -gt 0 && "$1" != "--" ]]; then TORCH_DIR="$1"; shift; fi
if [[ $# -gt 0 && "$1" != "--" ]]; then WORK="$1"; shift; fi
if [[ $# -gt 0 && "$1" == "--" ]]; then shift; fi
if [[ -z "$TORCH_DIR" ]]; then
  if [[ -n "${Torch_DIR:-}" ]]; then TORCH_DIR="$Torch_DIR"
  elif [[ -n "${LIBTORCH:-}" ]]; then TORCH_DIR="$LIBTORCH/share/cmake/Torch"
  else
    TORCH_DIR="$("${PYTHON:-python3}" -c 'import os, torch; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')" || {
      echo "check-libtorch2: give TORCH_DIR (a folder with TorchConfig.cmake), Torch_DIR, LIBTORCH or a PYTHON with torch" >&2
      exit 2
    }
  fi
fi
TORCH_DIR="$(cd "$TORCH_DIR" && pwd)"
[[ -f "$TORCH_DIR/TorchConfig.cmake" ]] || { echo "check-libtorch2: no TorchConfig.cmake in $TORCH_DIR" >&2; exit 2; }
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
[[ "$WORK" != "$ROOT" ]] || { echo "check-libtorch2: WORKDIR must not be the repository itself" >&2; exit 2; }

# The copy: exactly the working tree's files (tracked and untracked-but-not-ignored), with their
# modification times, so ninja rebuilds only what changed since the last run. Old files go first (a
# deleted .cpp must not linger: the build globs src/*.cpp and binding/*.cpp).
find "$WORK" -mindepth 1 -maxdepth 1 ! -name build ! -name node_modules -exec rm -rf {} +
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do if [[ -e "$f" ]]; then printf '%s\0' "$f"; fi; done |
  tar --null -T - -cf -) | tar -xf - -C "$WORK"
ln -sfn "$ROOT/node_modules" "$WORK/node_modules"

# A build/ configured against another libtorch is started over (its CMake cache remembers that one).
if [[ -d "$WORK/build" && "$(cat "$WORK/build/.torch-dir" 2>/dev/null)" != "$TORCH_DIR" ]]; then
  rm -rf "$WORK/build"
fi

cd "$WORK"
lock=()
if [[ -n "${TL_BUILD_LOCK:-}" ]]; then lock=(flock "$TL_BUILD_LOCK"); fi
mkdir -p build && echo "$TORCH_DIR" > build/.torch-dir
rc=0
cuda_args=()
if [[ -n "${CUDAToolkit_ROOT:-}" ]]; then
  cuda_args=("--CDCUDAToolkit_ROOT=$CUDAToolkit_ROOT" "--CDCUDA_TOOLKIT_ROOT_DIR=$CUDAToolkit_ROOT")
fi
Torch_DIR="$TORCH_DIR" "${lock[@]}" npx cmake-js compile "${cuda_args[@]}" > build.log 2>&1 || rc=$?
grep -E "torch-lora:|error:|FATAL" build.log | sort -u || true
[[ $rc == 0 ]] || { echo "check-libtorch2: the build failed; see $WORK/build.log" >&2; exit 1; }
version="$(node -e "console.log(require('node-gyp-build')('.').torchVersion())")"
echo "check-libtorch2: the addon in $WORK reports libtorch $version"
# dist/ (the CLI bin that a test runs through npx) is built output, not in the copy: build it.
npx tsc -p tsconfig.json && node scripts/make-bins-executable.js
npx jest "$@"
