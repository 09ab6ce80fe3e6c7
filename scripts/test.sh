#!/usr/bin/env bash
# The project's one test command: formatting, vet, the whole suite under the
# race detector, then every fuzz target for a few seconds. FUZZTIME is an
# execution count (default 20000x, about 1-3 s a target); use a larger count,
# e.g. FUZZTIME=5000000x, for a long campaign. A count, not a duration: Go
# 1.26's fuzz coordinator can fail a duration run with a spurious "context
# deadline exceeded" at the end of -fuzztime (golang/go#75804, fixed in 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: these files are not formatted:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 -timeout 15m ./...

fuzztime=${FUZZTIME:-20000x}
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/oauthsafe-fuzz.log 2>&1 || { cat /tmp/oauthsafe-fuzz.log; exit 1; }
  done
done
echo "fuzz: all targets passed"
