#!/usr/bin/env bash
# Runs every test project (Release), prints each project's summary and ends with one line 'N passed, N failed'.
# Extra arguments go to `dotnet test` (e.g. --filter Category=Slow).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --quiet || exit 1
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
echo "test: building the solution (Release)" >&2
dotnet build "$ROOT/Bert4Rec.Pipeline.sln" -c Release -nologo -v q -clp:ErrorsOnly || { echo "0 passed, 1 failed"; exit 1; }
touch "$ROOT/.native/build.stamp"
rc=0
dotnet test "$ROOT/Bert4Rec.Pipeline.sln" -c Release --no-build -nologo \
  --logger "trx;LogFilePrefix=r" --results-directory "$results" "$@" || rc=$?
passed=0; failed=0
for f in "$results"/*.trx; do
  [[ -f "$f" ]] || continue
  p=$(grep -o '<Counters [^>]*' "$f" | grep -o 'passed="[0-9]*"' | grep -o '[0-9]*' || echo 0)
  q=$(grep -o '<Counters [^>]*' "$f" | grep -o 'failed="[0-9]*"' | grep -o '[0-9]*' || echo 0)
  passed=$((passed + p)); failed=$((failed + q))
done
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi   # a crash or a build error counts as a failure
echo "$passed passed, $failed failed"
exit $rc
