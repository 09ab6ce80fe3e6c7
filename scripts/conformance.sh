#!/usr/bin/env bash
# The MCP authorization conformance suite (@modelcontextprotocol/conformance,
# pinned with its whole dependency tree in conformance/package-lock.json)
# against examples/mcp, the project's MCP client: scenario by scenario, the
# per-scenario counts of passed and failed checks, then one summary line
# "conformance: N passed, M failed" (N and M count scenarios). Exits non-zero
# when any scenario has a failed check or a warning (the suite's SHOULD checks
# are warnings), when the client times out, or when the client exits with an
# error where the scenario does not expect one.
#
# CONFORMANCE_SCENARIOS, a space-separated list, runs only those scenarios;
# CONFORMANCE_JOBS is how many run at once (default 2);
# CONFORMANCE_CLIENT replaces the client command (to compare with another
# client, e.g. the Go MCP SDK's conformance client).
# Needs node and npm (.ci/run installs them); npm ci reads only the lockfile.
set -euo pipefail
export GOTOOLCHAIN=go1.26.11
cd "$(dirname "$0")/.."
root=$PWD

# The scenarios issue 27 accepts: metadata discovery, registration, scopes,
# step-up, token endpoint authentication, 2025-03-26 fallbacks, resource and
# issuer checks.
scenarios=(
  auth/metadata-default
  auth/metadata-var1
  auth/metadata-var2
  auth/metadata-var3
  auth/basic-cimd
  auth/scope-from-www-authenticate
  auth/scope-from-scopes-supported
  auth/scope-omitted-when-undefined
  auth/scope-step-up
  auth/scope-retry-limit
  auth/token-endpoint-auth-basic
  auth/token-endpoint-auth-post
  auth/token-endpoint-auth-none
  auth/pre-registration
  auth/2025-03-26-oauth-metadata-backcompat
  auth/2025-03-26-oauth-endpoint-fallback
  auth/resource-mismatch
  auth/offline-access-scope
  auth/offline-access-not-supported
  auth/authorization-server-migration
  auth/iss-supported
  auth/iss-not-advertised
  auth/iss-supported-missing
  auth/iss-wrong-issuer
  auth/iss-unexpected
  auth/iss-normalized
  auth/metadata-issuer-mismatch
)
# The extension scenarios issue 28 accepts: machine clients (client
# credentials with a secret or private_key_jwt, a workload assertion),
# enterprise-managed authorization, and DPoP with and without nonces.
extensions=(
  auth/client-credentials-jwt
  auth/client-credentials-basic
  auth/enterprise-managed-authorization
  auth/wif-jwt-bearer
  auth/dpop
  auth/dpop-nonce
)
scenarios+=("${extensions[@]}")
if [ -n "${CONFORMANCE_SCENARIOS:-}" ]; then
  read -r -a scenarios <<<"$CONFORMANCE_SCENARIOS"
fi

command -v node >/dev/null && command -v npm >/dev/null || {
  echo "conformance: node and npm are needed (Debian: apt-get install nodejs npm)"; exit 1; }

node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || {
  echo "conformance: Node.js $(node --version) is too old; the suite needs 20 or later"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd conformance && npm ci --no-audit --no-fund --loglevel=error >"$work/npm.log" 2>&1) || {
  cat "$work/npm.log"; echo "conformance: npm ci failed"; exit 1; }

# The client as a real deployment would configure it: the URL of its
# published Client ID Metadata Document (the suite's CIMD scenario expects
# this one), and after listing the tools it calls the test server's tool.
# Everything scenario-specific (pre-registered credentials, keys, tokens)
# reaches it only through MCP_CONFORMANCE_CONTEXT.
client="$work/mcpclient -client-metadata-url https://conformance-test.local/client-metadata.json -call test-tool"
if [ -n "${CONFORMANCE_CLIENT:-}" ]; then
  client=$CONFORMANCE_CLIENT
else
  go build -o "$work/mcpclient" ./examples/mcp
fi
suite=(node --import "$root/conformance/node20.mjs"
  "$root/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js")

# One scenario: the suite starts its servers on random loopback ports and
# runs the client once; its log and checks.json land in $2, its exit code
# in $2/rc.
run_scenario() {
  local rc=0
  (cd "$work" && "${suite[@]}" client --command "$client" --scenario "$1" \
    --timeout 30000 -o "$2") >"$2/log" 2>&1 || rc=$?
  echo "$rc" >"$2/rc"
}

# CONFORMANCE_JOBS scenarios at a time (default 2); the report below is in
# the list's order.
jobs=${CONFORMANCE_JOBS:-2}
running=0
for s in "${scenarios[@]}"; do
  out="$work/out/${s//\//_}"
  mkdir -p "$out"
  run_scenario "$s" "$out" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0
failed=0
for s in "${scenarios[@]}"; do
  out="$work/out/${s//\//_}"
  rc=$(cat "$out/rc")
  counts=$(node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1];
    const find = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isFile() && e.name === "checks.json") return p;
        if (e.isDirectory()) { const f = find(p); if (f) return f; }
      }
    };
    const file = find(dir);
    if (!file) { console.log("0 0 0 nochecks"); process.exit(0); }
    const checks = JSON.parse(fs.readFileSync(file, "utf8"));
    const n = (st) => checks.filter((c) => c.status === st).length;
    console.log(`${n("SUCCESS")} ${n("FAILURE")} ${n("WARNING")} ok`);
  ' "$out")
  read -r ok bad warn state <<<"$counts"
  if [ "$rc" = 0 ] && [ "$state" = ok ] && [ "$bad" = 0 ] && [ "$warn" = 0 ]; then
    passed=$((passed + 1))
    printf 'PASS %-45s %3d passed, %d failed\n' "$s" "$ok" "$bad"
  else
    failed=$((failed + 1))
    printf 'FAIL %-45s %3d passed, %d failed, %d warnings (exit %d)\n' "$s" "$ok" "$bad" "$warn" "$rc"
    sed -n '/Failed Checks:/,$p;/Warning Checks:/,$p;/Client exited/,/Checks:/p' "$out/log" | head -40 | sed 's/^/    /'
  fi
done
echo "conformance: $passed passed, $failed failed"
[ "$failed" = 0 ]
