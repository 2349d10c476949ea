#!/usr/bin/env bash
# Makes TorchSharp 0.107.0's libLibTorchSharp.so load on Debian 12, in place: FILE is the copy in a build's output folder.
#
# Why: the library lists GLIBCXX_3.4.32 (GCC 13) among the versions it needs from libstdc++.so.6; Debian 12 ships GCC 12's
# libstdc++ (up to GLIBCXX_3.4.30), so dlopen refuses it. The only symbol of that version it names is
# std::ios_base_library_init(), which GCC 13's <iostream> references through a bare `.globl` so that programs pull in the
# newer libstdc++; nothing calls it (the library has no relocation against it; checked with `readelf -r`). A newer
# libstdc++ from Debian's archive does not help: trixie's 14.2 needs glibc 2.38 (__isoc23_strtoul) and Debian 12 has 2.36.
# What this does: sets VER_FLG_WEAK (0x2) on that one version requirement (the vna_flags field of its Vernaux entry in
# .gnu.version_r), so glibc's loader treats a missing GLIBCXX_3.4.32 as non-fatal. Two bytes change; everything else is
# as shipped. Both checksums are pinned: any other input is refused, the result is checked.
# Idempotent: an already patched file is left alone.
set -euo pipefail
f="${1:?usage: torchsharp-glibcxx.sh PATH/libLibTorchSharp.so}"
ORIG=cf33b1b0bb6bbb9754a768fb5c5d04d9f498603be50e73f55621a0b40ee608b8   # TorchSharp 0.107.0 runtimes/linux-x64/native
PATCHED=5968efac8270eff8a2b5ca7381612ea9cc54d81cf4104a54e0e6106b7b5f11e3   # the same with the one flag set
sum=$(sha256sum "$f" | cut -d' ' -f1)
[[ $sum == "$PATCHED" ]] && exit 0
if [[ $sum != "$ORIG" ]]; then
  echo "torchsharp-glibcxx: $f has SHA-256 $sum, not TorchSharp 0.107.0's libLibTorchSharp.so ($ORIG); update the pins in $0 for another TorchSharp version" >&2
  exit 1
fi
# file offset of .gnu.version_r, and the offset of the GLIBCXX_3.4.32 Vernaux inside it (readelf -V prints both)
sec=$(readelf -SW "$f" | awk '{ for (i = 1; i < NF; i++) if ($i == ".gnu.version_r") print $(i + 3) }')
aux=$(readelf -VW "$f" | awk '/Name: GLIBCXX_3\.4\.32/ { sub(":", "", $1); print $1; exit }')
[[ -n $sec && -n $aux ]] || { echo "torchsharp-glibcxx: no GLIBCXX_3.4.32 requirement found in $f" >&2; exit 1; }
off=$(( 0x$sec + aux + 4 ))                # Elf64_Vernaux: vna_hash (4 bytes), vna_flags (2), vna_other (2), vna_name, vna_next
tmp="$f.tmp.$$"
cp "$f" "$tmp"
printf '\x02\x00' | dd of="$tmp" bs=1 seek="$off" conv=notrunc status=none
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
if [[ $sum != "$PATCHED" ]]; then rm -f "$tmp"; echo "torchsharp-glibcxx: patched file has SHA-256 $sum, expected $PATCHED" >&2; exit 1; fi
mv "$tmp" "$f"
