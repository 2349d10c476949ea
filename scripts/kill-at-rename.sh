#!/usr/bin/env bash
# Kills each writer (prepare, export, index) at its 1st, 2nd, ... rename (strace fault injection), and checks after every
# kill that the output is usable (the old one or the new one) and that a plain re-run succeeds. One RESULT line.
#   scripts/kill-at-rename.sh RUN_DIR [PAIRS_FILE]     (RUN_DIR: a training run folder for export; needs strace)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI=(dotnet "$ROOT/training/Bert4Rec.Cli/bin/Release/net10.0/bert4rec.dll")
command -v strace >/dev/null || { echo "kill-at-rename: strace is not installed (apt-get install strace); skipped"; exit 0; }
RUN="${1:?usage: kill-at-rename.sh RUN_DIR [PAIRS_FILE]}"
W=$(mktemp -d /tmp/b4r-kill-XXXXXX); trap 'rm -rf "$W"' EXIT
PAIRS="${2:-$W/pairs.txt}"
[[ -f "$PAIRS" ]] || for u in $(seq 1 60); do for t in $(seq 1 8); do echo "u$u i$(( (u * 7 + t * 13) % 50 + 1 ))"; done; done > "$PAIRS"
kills=0; usable=0; rerun_ok=0; unusable=0
check() {   # $1 writer, $2 N: is the output usable?
  local ok=1
  case $1 in
    prepare) "${CLI[@]}" evaluate --data "$W/data" --baseline pop >/dev/null 2>&1 || ok=0 ;;
    export|index) "${CLI[@]}" recommend --bundle "$W/bundle" --history "$(head -1 "$W/bundle/vocab.txt")" -k 3 >/dev/null 2>&1 || ok=0 ;;
  esac
  echo $ok
}
for writer in prepare export index; do
  # a first good output, so every kill replaces an existing one
  case $writer in
    prepare) cmd=("${CLI[@]}" prepare --input "$PAIRS" --format pairs --out "$W/data") ;;
    export) cmd=("${CLI[@]}" export --run "$RUN" --out "$W/bundle") ;;
    index) cmd=("${CLI[@]}" index --bundle "$W/bundle" --factory Flat) ;;
  esac
  "${cmd[@]}" >/dev/null 2>&1 || { echo "kill-at-rename: $writer failed before any kill"; exit 1; }
  [[ $writer == export ]] && { "${CLI[@]}" index --bundle "$W/bundle" --factory Flat >/dev/null 2>&1; }
  renames=$(strace -f -qq -c -e trace=rename,renameat,renameat2 -o "$W/count" "${cmd[@]}" >/dev/null 2>&1; awk '/rename/ {s+=$4} END {print s+0}' "$W/count")
  [[ $writer == export ]] && { "${CLI[@]}" index --bundle "$W/bundle" --factory Flat >/dev/null 2>&1; }
  for n in $(seq 1 "$renames"); do
    ( strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 -e inject=rename,renameat,renameat2:signal=KILL:when=$n "${cmd[@]}" ) >/dev/null 2>&1
    kills=$((kills+1))
    if [[ $writer == export ]]; then
      # a fresh export has no index yet: usable = the old bundle (with its index) or a new one that `index` completes
      [[ -f "$W/bundle/manifest.pb" ]] && "${CLI[@]}" index --bundle "$W/bundle" --factory Flat >/dev/null 2>&1
    fi
    if [[ $(check $writer) == 1 ]]; then usable=$((usable+1)); else unusable=$((unusable+1)); echo "  $writer killed at rename $n: output NOT usable"; fi
    "${cmd[@]}" >/dev/null 2>&1 && rerun_ok=$((rerun_ok+1))
    [[ $writer == export ]] && "${CLI[@]}" index --bundle "$W/bundle" --factory Flat >/dev/null 2>&1
  done
  left=$(ls -a "$W" "$W/bundle" 2>/dev/null | grep -c -E '\.(tmp|old)-' || true)
  echo "  $writer: $renames renames, killed at each; leftovers after the re-runs: $left"
done
echo "RESULT {\"kills\":$kills,\"usable\":$usable,\"unusable\":$unusable,\"rerun_ok\":$rerun_ok}"
