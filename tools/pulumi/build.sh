#!/usr/bin/env bash
# Builds the Pulumi CLI and Swarmform's Node.js language host from Go modules, into a cache keyed by the
# @pulumi/pulumi version of package-lock.json and a hash of this folder's inputs:
#
#   ${SWARMFORM_CACHE:-~/.cache/swarmform}/pulumi-<version>-<hash>/bin/
#     pulumi                          the CLI (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
#     pulumi-language-nodejs          our language host (language-nodejs/main.go; see README.md here)
#     pulumi-resource-pulumi-nodejs   the dynamic-provider launcher that @pulumi/pulumi ships (copied)
#
# Skips the build when the cache holds it. Progress and times go to stderr; the bin folder is the one line
# printed on stdout, so `PATH="$(tools/pulumi/build.sh):$PATH"` works. Needs Go (>= the go line of go.mod;
# /usr/local/go/bin is used when `go` is not on PATH) and the Go module proxy; a cold build takes ~11 min
# on 2 cores, a warm one (Go build cache present) well under one.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
log() { echo "tools/pulumi/build.sh: $*" >&2; }

version="$(node -p "require('$repo/package-lock.json').packages['node_modules/@pulumi/pulumi'].version")"
for mod in pkg sdk; do
  if ! grep -Eq "^[[:space:]]*github.com/pulumi/pulumi/$mod/v3 v$version\$" "$here/go.mod"; then
    log "tools/pulumi/go.mod must require github.com/pulumi/pulumi/$mod/v3 v$version (the @pulumi/pulumi" \
      "version in package-lock.json); update it and run 'go mod tidy' in tools/pulumi"
    exit 1
  fi
done

hash="$(cd "$here" && cat go.mod go.sum tools.go language-nodejs/*.go build.sh | sha256sum | cut -c1-12)"
cache="${SWARMFORM_CACHE:-$HOME/.cache/swarmform}/pulumi-$version-$hash"
bin="$cache/bin"
launcher="$repo/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"

if [ -f "$cache/complete" ]; then
  log "cached: $bin (pulumi $version)"
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
if ! command -v go >/dev/null 2>&1; then
  log "Go is needed to build the Pulumi CLI: install it at /usr/local/go (or put 'go' on PATH)"
  exit 1
fi
if [ ! -x "$launcher" ]; then
  log "$launcher is missing: run 'npm ci' first"
  exit 1
fi

started=$(date +%s)
step() { log "[$(($(date +%s) - started))s] $*"; }
tmp="$cache.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
cd "$here"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false -mod=readonly"

step "$(go version); go build pulumi $version (cold: ~11 min on 2 cores; warm: seconds)"
go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
  -o "$tmp/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
step "go build pulumi-language-nodejs (ours, tools/pulumi/language-nodejs)"
go build -ldflags "-X main.version=$version" -o "$tmp/bin/pulumi-language-nodejs" ./language-nodejs
cp "$launcher" "$tmp/bin/pulumi-resource-pulumi-nodejs"
chmod +x "$tmp/bin/pulumi-resource-pulumi-nodejs"
"$tmp/bin/pulumi" version >&2

rm -rf "$cache"
mv "$tmp" "$cache"
touch "$cache/complete"
step "built $bin in $(($(date +%s) - started)) s"
echo "$bin"
