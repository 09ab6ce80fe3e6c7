#!/usr/bin/env bash
# Prepares a release commit of the CLI module, the way gopls releases: during
# development cmd/oauthsafe/go.mod points at the library in this checkout with
# replace directives (so the workspace and `go mod tidy` work offline), and
# `go install ...@version` refuses a module with replace directives. A release
# drops them and requires the tagged library instead.
#
# Usage: scripts/release.sh vX.Y.Z   (tag vX.Y.Z for the library first, then
# commit the result and tag cmd/oauthsafe/vX.Y.Z and oauthtest/vX.Y.Z)
set -euo pipefail
cd "$(dirname "$0")/.."
v=${1:?usage: scripts/release.sh vX.Y.Z}
for m in oauthtest cmd/oauthsafe; do
  (cd "$m" &&
    go mod edit -dropreplace github.com/oauthsafe/oauthsafe -require "github.com/oauthsafe/oauthsafe@$v" &&
    if grep -q 'oauthsafe/oauthtest =>' go.mod; then
      go mod edit -dropreplace github.com/oauthsafe/oauthsafe/oauthtest \
        -require "github.com/oauthsafe/oauthsafe/oauthtest@$v"
    fi)
done
echo "cmd/oauthsafe and oauthtest now require the library at $v; commit, then tag:"
echo "  git tag cmd/oauthsafe/$v; git tag oauthtest/$v"
