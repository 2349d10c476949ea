#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, unattended and idempotent; quick when already done.
#   1. Debian packages (libfaiss-dev, libopenblas-dev, liblapack-dev, g++, strace, libjemalloc2, fonts-dejavu-core,
#      python3-faiss), only those missing;
#   2. the FAISS C shim (retrieval/native) compiled against Debian's static libfaiss.a into .native/ (git-ignored).
# ONNX Runtime comes from NuGet (Microsoft.ML.OnnxRuntime, restored by dotnet build), not from here.
# Re-run it any time; ./bert4rec runs it before every verb.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NATIVE="$ROOT/.native"
SHIM_SRC="$ROOT/retrieval/native/faiss_shim.cpp"
SHIM_HDR="$ROOT/retrieval/native/faiss_shim.h"
SHIM_SO="$NATIVE/libbert4rec_faiss.so"
# strace: the kill-at-rename test (fault injection). libjemalloc2: the allocator ./bert4rec preloads for the TorchSharp
# engine (glibc malloc returns libtorch's large per-step activations to the kernel and faults them back in every step).
# fonts-dejavu-core: the PNG charts' text (SkiaSharp's dependency-free build reads fonts from /usr/share/fonts; with
# none there it draws the lines and silently no text)
# python3-faiss: FAISS's own reader (same 1.7.3 as libfaiss-dev), for the test that our index files are plain FAISS files
APT_PACKAGES=(libfaiss-dev libopenblas-dev liblapack-dev g++ strace libjemalloc2 fonts-dejavu-core python3-faiss)

quiet=0
[[ "${1:-}" == "--quiet" ]] && quiet=1
say() { [[ $quiet == 1 ]] || echo "setup: $*" >&2; }
step=""
fail() { echo "setup: FAILED at step '$step': $*" >&2; echo "setup: fix the cause and retry with: $ROOT/scripts/setup.sh" >&2; exit 1; }
trap 'fail "command failed (line $LINENO)"' ERR

mkdir -p "$NATIVE"

# --- 1. Debian packages -------------------------------------------------------------------------------------------
step="debian packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) == 0 ]] || SUDO="sudo"
  aptlog="$(mktemp)"
  $SUDO apt-get update -qq >"$aptlog" 2>&1 || { cat "$aptlog" >&2; rm -f "$aptlog"; fail "apt-get update failed"; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1 \
    || { cat "$aptlog" >&2; rm -f "$aptlog"; fail "apt-get install ${missing[*]} failed"; }
  rm -f "$aptlog"
else
  say "Debian packages present: ${APT_PACKAGES[*]}"
fi

# --- ONNX Runtime: from NuGet now; a library left by the old npm route is removed -----------------------------------
rm -f "$NATIVE/libonnxruntime.so.1"

# --- 2. FAISS shim --------------------------------------------------------------------------------------------------
step="faiss shim"
if [[ -f "$SHIM_SRC" ]]; then
  if [[ ! -f "$SHIM_SO" || "$SHIM_SRC" -nt "$SHIM_SO" || "$SHIM_HDR" -nt "$SHIM_SO" || "$0" -nt "$SHIM_SO" ]]; then
    say "compiling the FAISS shim into $SHIM_SO"
    tmp="$SHIM_SO.tmp.$$"
    g++ -std=c++17 -O2 -fPIC -shared -fopenmp -fvisibility=hidden -I"$ROOT/retrieval/native" \
      -o "$tmp" "$SHIM_SRC" /usr/lib/x86_64-linux-gnu/libfaiss.a -lopenblas -llapack -lgomp \
      -Wl,--no-undefined -Wl,-soname,libbert4rec_faiss.so \
      || { rm -f "$tmp"; fail "g++ could not build the FAISS shim"; }
    mv "$tmp" "$SHIM_SO"
  else
    say "FAISS shim up to date ($SHIM_SO)"
  fi
fi
trap - ERR
say "done; native libraries in $NATIVE"
