#!/usr/bin/env bash
# Keeps the deploy configs and the LogQL cookbook honest:
#
#   1. tests/deploy/check_deploy.py: the Promtail and Grafana YAML files parse,
#      the Alloy files parse, the dashboard is JSON; the pipelines keep service
#      and level as the only labels, take the time from "timestamp" and put the
#      request's ids in structured metadata; every key a query, panel or config
#      reads is one trail writes (from docs/log-format.md, middleware.md,
#      middleware-curl.md, async.md and lib/log.c); every output in docs/loki.md
#      is what its query gives on tests/deploy/sample.log, recomputed; every
#      dashboard expression returns something on the sample.
#   2. tests/deploy/logql_check.mjs: every LogQL expression of docs/loki.md, the
#      dashboard and the data source parses with @grafana/lezer-logql, the
#      grammar of Grafana's query editor, installed from the npm registry into
#      BUILD_DIR/deploy-npm (once; later runs reuse it).
#
# ctest: check_deploy BUILD_DIR SOURCE_DIR. Needs Debian's python3 with
# python3-yaml (a failure without it), and node and npm (skipped, 77, without
# them, after the first part has passed). After a deliberate change of a query
# or of the sample, DEPLOY_UPDATE=1 rewrites the outputs in docs/loki.md from
# the sample; review the diff.
set -euo pipefail

build="$(cd "${1:?usage: check_deploy.sh BUILD_DIR SOURCE_DIR}" && pwd)"
src="$(cd "${2:?usage: check_deploy.sh BUILD_DIR SOURCE_DIR}" && pwd)"
lezer_version=0.4.2

# Debian's interpreter, where python3-yaml lives, whatever else is on PATH.
py=/usr/bin/python3
[[ -x "$py" ]] || py="$(command -v python3 || true)"
if [[ -z "$py" ]]; then
  echo "check_deploy: python3 is not installed (Debian: python3, python3-yaml)"
  exit 1
fi
if ! "$py" -c 'import yaml' 2>/dev/null; then
  echo "check_deploy: $py has no yaml module: install Debian's python3-yaml"
  exit 1
fi

args=("$src")
[[ "${DEPLOY_UPDATE:-0}" == 1 ]] && args+=(--update)
"$py" "$src/tests/deploy/check_deploy.py" "${args[@]}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "check_deploy: node and npm are needed for the LogQL grammar check (Debian: nodejs, npm); skipped"
  exit 77
fi

npm_dir="$build/deploy-npm"
pkg="$npm_dir/node_modules/@grafana/lezer-logql/package.json"
installed=""
[[ -f "$pkg" ]] && installed="$(node -p "require('$pkg').version" 2>/dev/null || true)"
if [[ "$installed" != "$lezer_version" ]]; then
  mkdir -p "$npm_dir"
  [[ -f "$npm_dir/package.json" ]] || echo '{"name":"trail-deploy-check","private":true}' >"$npm_dir/package.json"
  log="$npm_dir/npm-install.log"
  if ! (cd "$npm_dir" && npm install --no-audit --no-fund --loglevel=error \
      "@grafana/lezer-logql@$lezer_version") >"$log" 2>&1; then
    echo "check_deploy: npm install @grafana/lezer-logql@$lezer_version failed:"
    cat "$log"
    exit 1
  fi
fi
node "$src/tests/deploy/logql_check.mjs" "$src" "$npm_dir"
