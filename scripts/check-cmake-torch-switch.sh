#!/usr/bin/env bash
# Checks CMakeLists.txt's choice of libtorch in one configured tree, as a user meets it: configured first
# by `npm install` (whatever libtorch it finds), then LIBTORCH set and rebuilt, then Torch_DIR, then
# neither. Each time the status line and the CMake cache must name the libtorch asked for. With a CUDA
# libtorch as the second one and root (unshare), also a configure where no CUDA runtime headers exist:
# it must pass, saying so. Configures only (no compile): about a minute.
#
#   scripts/check-cmake-torch-switch.sh OTHER_LIBTORCH [WORKDIR]
#
# OTHER_LIBTORCH: a libtorch other than the one found by default (an unpacked libtorch, or a pip
# PyTorch's torch/ folder), e.g. /tmp/py/lib/python3.11/site-packages/torch.
# WORKDIR (default ${TMPDIR:-/tmp}/torch-lora-switch) holds the build tree; started afresh each run.
# Exit 0 when every check holds; otherwise the failed check and the configure log.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
[[ $# -ge 1 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
OTHER="$(cd "$1" && pwd)"
WORK="${2:-${TMPDIR:-/tmp}/torch-lora-switch}"
[[ -f "$OTHER/share/cmake/Torch/TorchConfig.cmake" ]] || { echo "no share/cmake/Torch/TorchConfig.cmake in $OTHER" >&2; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK"
B="$WORK/build"
failures=0

configure() { # env assignments...; prints the torch-lora status line
  (cd "$ROOT" && env -u LIBTORCH -u Torch_DIR "$@" cmake -S . -B "$B" -G Ninja >"$WORK/last.log" 2>&1) || {
    echo "FAIL: configure with [$*] failed:" >&2; grep -E "Error|error" -A4 "$WORK/last.log" >&2 || true; exit 1; }
  grep -E "^-- torch-lora: libtorch [0-9]" "$WORK/last.log" | sed 's/^-- //'
}
cached() { sed -n "s/^$1:[A-Z]*=//p" "$B/CMakeCache.txt"; }
check() { # description, condition...
  local what="$1"; shift
  if "$@"; then echo "  ok: $what"; else echo "  FAIL: $what" >&2; failures=$((failures + 1)); fi
}

echo "1. the default libtorch (what npm install finds)"
line="$(configure)"; echo "  $line"
default_dir="$(cached Torch_DIR)"
check "Torch_DIR is set in the cache" test -n "$default_dir"
check "the status line names it" grep -qF "$default_dir" <<<"$line"

echo "2. LIBTORCH=$OTHER in the same tree"
line="$(configure LIBTORCH="$OTHER")"; echo "  $line"
check "the status line says LIBTORCH and its folder" grep -qF "from LIBTORCH ($OTHER/share/cmake/Torch)" <<<"$line"
check "the cache's Torch_DIR is LIBTORCH's" test "$(cached Torch_DIR)" = "$OTHER/share/cmake/Torch"
check "the cache's TORCH_LIBRARY is LIBTORCH's" grep -q "^$OTHER/lib/" <<<"$(cached TORCH_LIBRARY)"

echo "3. Torch_DIR=$default_dir in the same tree"
line="$(configure Torch_DIR="$default_dir")"; echo "  $line"
check "the status line says Torch_DIR" grep -qF "from Torch_DIR ($default_dir)" <<<"$line"
check "the cache's Torch_DIR is back" test "$(cached Torch_DIR)" = "$default_dir"

echo "4. LIBTORCH again, then nothing set"
configure LIBTORCH="$OTHER" >/dev/null
line="$(configure)"; echo "  $line"
check "the default libtorch again" test "$(cached Torch_DIR)" = "$default_dir"
check "the status line does not claim LIBTORCH or Torch_DIR" bash -c '! grep -qE "from (LIBTORCH|Torch_DIR)" <<<"$0"' "$line"

if grep -qE "set\(CAFFE2_USE_CUDA +(1|ON|TRUE)\)" "$OTHER/share/cmake/Caffe2/Caffe2Config.cmake" 2>/dev/null; then
  echo "5. a CUDA libtorch where no CUDA runtime headers can be found"
  if [[ "$(id -u)" == 0 ]] && command -v unshare >/dev/null; then
    # Every place CMakeLists looks for them, hidden by empty folders in a private mount namespace.
    empty="$WORK/empty"; mkdir -p "$empty"
    mounts=""
    for inc in "$OTHER"/../nvidia/*/include /usr/local/cuda/include /usr/local/cuda/targets/*/include /opt/cuda/include; do
      [[ -f "$inc/cuda_runtime_api.h" ]] && mounts+="mount --bind '$empty' '$(cd "$inc" && pwd -P)' && "
    done
    [[ -f /usr/include/cuda_runtime_api.h ]] && echo "  (skipped: /usr/include has CUDA headers)" || {
      out="$(cd "$ROOT" && unshare -m sh -c "${mounts} env -u LIBTORCH -u Torch_DIR LIBTORCH='$OTHER' CUDAToolkit_ROOT= CUDA_HOME= CUDA_PATH= cmake -S . -B '$B' -G Ninja" 2>&1)" && rc=0 || rc=$?
      echo "$out" | grep -E "^-- torch-lora: libtorch [0-9]" | sed 's/^-- /  /'
      check "configure passes" test "$rc" = 0
      check "it says the headers are missing and what works" grep -qE "CUDA: yes, but no CUDA [0-9]* ?runtime headers were found" <<<"$out"
    }
  else
    echo "  (skipped: needs root and unshare to hide the CUDA headers)"
  fi
fi

[[ $failures == 0 ]] && echo "check-cmake-torch-switch: all checks passed" || { echo "check-cmake-torch-switch: $failures failed" >&2; exit 1; }
