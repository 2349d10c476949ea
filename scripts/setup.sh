#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, unattended and idempotent; quick when already done.
#   1. Debian packages (libfaiss-dev, libopenblas-dev, liblapack-dev, g++), only those missing;
#   2. ONNX Runtime 1.30.0: libonnxruntime.so.1 out of the npm package onnxruntime-node@1.30.0 (npm pack, no install
#      scripts), checksum-pinned, into .native/ (git-ignored), with a download cache outside the clone;
#   3. the FAISS C shim (retrieval/native) compiled against Debian's static libfaiss.a into .native/.
# Re-run it any time; ./bert4rec runs it before every verb.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NATIVE="$ROOT/.native"
CACHE="${BERT4REC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bert4rec}"
ORT_VERSION=1.30.0
ORT_TGZ="onnxruntime-node-$ORT_VERSION.tgz"
ORT_TGZ_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_SO_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ORT_MEMBER="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
SHIM_SRC="$ROOT/retrieval/native/faiss_shim.cpp"
SHIM_HDR="$ROOT/retrieval/native/faiss_shim.h"
SHIM_SO="$NATIVE/libbert4rec_faiss.so"
APT_PACKAGES=(libfaiss-dev libopenblas-dev liblapack-dev g++)

quiet=0
[[ "${1:-}" == "--quiet" ]] && quiet=1
say() { [[ $quiet == 1 ]] || echo "setup: $*" >&2; }
step=""
fail() { echo "setup: FAILED at step '$step': $*" >&2; echo "setup: fix the cause and retry with: $ROOT/scripts/setup.sh" >&2; exit 1; }
trap 'fail "command failed (line $LINENO)"' ERR

mkdir -p "$NATIVE" "$CACHE"

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

# --- 2. ONNX Runtime ------------------------------------------------------------------------------------------------
step="onnxruntime $ORT_VERSION"
sha() { sha256sum "$1" | cut -d' ' -f1; }
if [[ -f "$NATIVE/libonnxruntime.so.1" && "$(sha "$NATIVE/libonnxruntime.so.1")" == "$ORT_SO_SHA256" ]]; then
  say "ONNX Runtime $ORT_VERSION present ($NATIVE/libonnxruntime.so.1)"
else
  if [[ ! -f "$CACHE/$ORT_TGZ" || "$(sha "$CACHE/$ORT_TGZ")" != "$ORT_TGZ_SHA256" ]]; then
    say "downloading onnxruntime-node@$ORT_VERSION with npm pack (113 MB, once per machine; cached in $CACHE)"
    command -v npm >/dev/null || fail "npm is not installed (apt-get install npm)"
    tmpd="$(mktemp -d "$CACHE/npm.XXXXXX")"
    (cd "$tmpd" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null 2>"$tmpd/npm.log") \
      || { cat "$tmpd/npm.log" >&2; rm -rf "$tmpd"; fail "npm pack onnxruntime-node@$ORT_VERSION failed"; }
    got="$(sha "$tmpd/$ORT_TGZ")"
    if [[ "$got" != "$ORT_TGZ_SHA256" ]]; then
      rm -rf "$tmpd"
      fail "checksum mismatch for $ORT_TGZ: expected $ORT_TGZ_SHA256, got $got; refusing it"
    fi
    mv "$tmpd/$ORT_TGZ" "$CACHE/$ORT_TGZ"
    rm -rf "$tmpd"
  fi
  say "extracting libonnxruntime.so.1 from $CACHE/$ORT_TGZ"
  tmpd="$(mktemp -d "$NATIVE/ort.XXXXXX")"
  tar -xzf "$CACHE/$ORT_TGZ" -C "$tmpd" "$ORT_MEMBER" || { rm -rf "$tmpd"; fail "could not extract $ORT_MEMBER"; }
  got="$(sha "$tmpd/$ORT_MEMBER")"
  if [[ "$got" != "$ORT_SO_SHA256" ]]; then
    rm -rf "$tmpd"
    fail "checksum mismatch for libonnxruntime.so.1: expected $ORT_SO_SHA256, got $got; refusing it"
  fi
  mv "$tmpd/$ORT_MEMBER" "$NATIVE/libonnxruntime.so.1"
  rm -rf "$tmpd"
fi

# --- 3. FAISS shim --------------------------------------------------------------------------------------------------
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
