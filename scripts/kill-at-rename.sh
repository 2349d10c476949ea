#!/usr/bin/env bash
# Kills each writer (prepare, export, index) at its 1st, 2nd, ... rename (strace fault injection), and checks after every
# kill that the output is usable (the old one or the new one) and that a plain re-run succeeds. One RESULT line:
# kills tried, killed (the writer really died by the signal), usable, unusable, rerun_ok, leftovers (temp folders left
# after the re-runs). The xunit test KillAtRenameTests runs it.
#   scripts/kill-at-rename.sh RUN_DIR [PAIRS_FILE]     (RUN_DIR: a training run folder for export; needs strace)
#   BERT4REC_CLI_DLL=path/to/bert4rec.dll overrides the Release build's CLI.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI=(dotnet "${BERT4REC_CLI_DLL:-$ROOT/training/Bert4Rec.Cli/bin/Release/net10.0/bert4rec.dll}")
command -v strace >/dev/null || { echo "kill-at-rename: strace is not installed (apt-get install strace); skipped"; exit 0; }
RUN="${1:?usage: kill-at-rename.sh RUN_DIR [PAIRS_FILE]}"
W=$(mktemp -d /tmp/b4r-kill-XXXXXX); trap 'rm -rf "$W"' EXIT
PAIRS="${2:-$W/pairs.txt}"
[[ -f "$PAIRS" ]] || for u in $(seq 1 60); do for t in $(seq 1 8); do echo "u$u i$(( (u * 7 + t * 13) % 50 + 1 ))"; done; done > "$PAIRS"
kills=0; killed=0; usable=0; rerun_ok=0; unusable=0; leftovers=0
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
  # strace counts `when=N` per syscall (and per thread), not over a set: so each rename syscall is killed at its own
  # 1st, 2nd, ... call (a set would only ever hit the first kind called, e.g. never the folder swap's renameat2)
  strace -f -qq -c -e trace=rename,renameat,renameat2 -o "$W/count" "${cmd[@]}" >/dev/null 2>&1
  points=$(awk '$NF ~ /^rename(at2?)?$/ { for (i = 1; i <= $4; i++) print $NF ":" i }' "$W/count")
  renames=$(echo "$points" | grep -c . || true)
  [[ $writer == export ]] && { "${CLI[@]}" index --bundle "$W/bundle" --factory Flat >/dev/null 2>&1; }
  for point in $points; do
    sys=${point%:*}; n=${point#*:}
    ( strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 -e inject=$sys:signal=KILL:when=$n "${cmd[@]}" ) >/dev/null 2>&1
    rc=$?
    kills=$((kills+1))
    # strace ends with its tracee's fate: 128 + 9 when the writer died by the injected SIGKILL
    if [[ $rc == 137 ]]; then killed=$((killed+1)); else echo "  $writer at $sys call $n: not killed (exit $rc)"; fi
    if [[ $writer == export ]]; then
      # a fresh export has no index yet: usable = the old bundle (with its index) or a new one that `index` completes
      [[ -f "$W/bundle/manifest.pb" ]] && "${CLI[@]}" index --bundle "$W/bundle" --factory Flat >/dev/null 2>&1
    fi
    if [[ $(check $writer) == 1 ]]; then usable=$((usable+1)); else unusable=$((unusable+1)); echo "  $writer killed at $sys call $n: output NOT usable"; fi
    "${cmd[@]}" >/dev/null 2>&1 && rerun_ok=$((rerun_ok+1))
    [[ $writer == export ]] && "${CLI[@]}" index --bundle "$W/bundle" --factory Flat >/dev/null 2>&1
  done
  left=$(ls -a "$W" "$W/bundle" 2>/dev/null | grep -c -E '\.(tmp|old)-' || true)
  leftovers=$((leftovers+left))
  echo "  $writer: $renames renames ($(echo $points)), killed at each; leftovers after the re-runs: $left"
done
echo "RESULT {\"kills\":$kills,\"killed\":$killed,\"usable\":$usable,\"unusable\":$unusable,\"rerun_ok\":$rerun_ok,\"leftovers\":$leftovers}"
