#!/usr/bin/env bash
# The project's one test command, for every module of the workspace (go.work):
# gofmt, `go mod tidy -diff`, go vet, staticcheck, govulncheck, the whole
# suite under the race detector, every fuzz target for a few seconds, then
# the MCP authorization conformance suite (scripts/conformance.sh).
#
# FUZZTIME is an execution count (default 20000x, about 1-3 s a target); use
# a larger count, e.g. FUZZTIME=5000000x, for a long campaign. A count, not a
# duration: Go 1.26's fuzz coordinator can fail a duration run with a
# spurious "context deadline exceeded" (golang/go#75804, fixed in 1.27).
#
# staticcheck and govulncheck are installed pinned from the Go module proxy.
# govulncheck reads a vulnerability database built from the pinned
# golang.org/x/vulndb module (scripts/vulndb), since CI reaches only the
# module proxy.
set -euo pipefail
# The go.mod files name the toolchain (go1.26.11 fixes standard-library
# vulnerabilities govulncheck reports in earlier 1.26 releases); an image that
# sets GOTOOLCHAIN=local would ignore that, so ask for it explicitly.
export GOTOOLCHAIN=go1.26.11
cd "$(dirname "$0")/.."
root=$PWD

STATICCHECK_VERSION=v0.8.2
GOVULNCHECK_VERSION=v1.1.4
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

mapfile -t modules < <(go list -m -f '{{.Dir}}')
echo "modules: ${modules[*]#$root/}"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt: these files are not formatted:"; echo "$unformatted"; exit 1
fi

gobin=$(go env GOPATH)/bin
GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
GOFLAGS= go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
vulnsrc=$(cd /tmp && GOFLAGS= go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
vulndb=$(mktemp -d)
trap 'rm -rf "$vulndb"' EXIT
go run ./scripts/vulndb "$vulnsrc/data/osv" "$vulndb"

for m in "${modules[@]}"; do
  rel=${m#$root}; rel=./${rel#/}
  echo "== module $rel: tidy, vet, staticcheck, govulncheck"
  (cd "$m" && go mod tidy -diff) || { echo "go mod tidy -diff is not empty in $rel"; exit 1; }
  (cd "$m" && go vet ./...)
  (cd "$m" && "$gobin/staticcheck" ./...)
  (cd "$m" && "$gobin/govulncheck" -db "file://$vulndb" ./...)
done

for m in "${modules[@]}"; do
  rel=${m#$root}; rel=./${rel#/}
  echo "== module $rel: go test -race"
  (cd "$m" && go test -race -count=1 -timeout 15m ./...)
done

fuzztime=${FUZZTIME:-20000x}
for m in "${modules[@]}"; do
  for pkg in $(cd "$m" && go list ./...); do
    for target in $(cd "$m" && go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      echo "fuzz $pkg $target ($fuzztime)"
      (cd "$m" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg") >/tmp/oauthsafe-fuzz.log 2>&1 || { cat /tmp/oauthsafe-fuzz.log; exit 1; }
    done
  done
done
echo "fuzz: all targets passed"

# The MCP authorization conformance suite against examples/mcp.
bash scripts/conformance.sh
