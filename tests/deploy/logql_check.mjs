// Parses every LogQL expression of the docs with Grafana's LogQL grammar
// (@grafana/lezer-logql, the parser of Grafana's Loki query editor) and fails
// on any syntax error.
//
//   node tests/deploy/logql_check.mjs SOURCE_DIR NPM_DIR
//
// NPM_DIR is a directory where `npm install @grafana/lezer-logql` was run
// (tests/check_deploy.sh makes it under the build directory). The expressions:
//
//   - each ```logql block of docs/loki.md (one query per block);
//   - each "expr" of docs/deploy/grafana-dashboard.json, with the dashboard's
//     variables replaced as Grafana would before sending the query ($service
//     by its "All" value, $__interval and the like by a duration, the textbox
//     variables by their defaults);
//   - the tracesToLogsV2 query of docs/deploy/loki-datasource.yaml, with
//     provisioning's $$ unescaped and ${__trace.traceId} replaced by an id.
//
// The grammar reports what it cannot parse as error nodes (⚠); a query passes
// when its tree has none and its top node is a whole LogQL expression.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [src, npmDir] = process.argv.slice(2);
if (!src || !npmDir) {
  console.error('usage: logql_check.mjs SOURCE_DIR NPM_DIR');
  process.exit(2);
}
const require = createRequire(join(npmDir, 'package.json'));
const { parser } = require('@grafana/lezer-logql');

const queries = [];

// docs/loki.md
const md = readFileSync(join(src, 'docs/loki.md'), 'utf8');
for (const m of md.matchAll(/^```logql[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)) {
  queries.push({ where: 'docs/loki.md', expr: m[1].trim() });
}

// docs/deploy/grafana-dashboard.json
const dash = JSON.parse(readFileSync(join(src, 'docs/deploy/grafana-dashboard.json'), 'utf8'));
const vars = {};
for (const v of dash.templating?.list ?? []) {
  let value = v.current?.value;
  if (v.type === 'query') value = v.allValue ?? '.+';
  if (Array.isArray(value)) value = value[0];
  vars[v.name] = String(value ?? v.query ?? '');
}
function interpolate(expr) {
  expr = expr.replace(/\$\{?__(interval|rate_interval|range|auto)\}?/g, '5m');
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (all, a, b) => {
    const name = a ?? b;
    return name in vars ? vars[name] : all;
  });
}
(function walk(node, title) {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, title);
  } else if (node && typeof node === 'object') {
    const t = node.title ?? title;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'expr' && typeof v === 'string') {
        queries.push({ where: `grafana-dashboard.json panel "${t}"`, expr: interpolate(v), raw: v });
      } else {
        walk(v, t);
      }
    }
  }
})(dash.panels ?? [], '');

// docs/deploy/loki-datasource.yaml: the single-quoted query of tracesToLogsV2
const ds = readFileSync(join(src, 'docs/deploy/loki-datasource.yaml'), 'utf8');
for (const m of ds.matchAll(/^\s*query:\s*'((?:[^']|'')*)'\s*$/gm)) {
  const expr = m[1]
    .replace(/''/g, "'")
    .replace(/\$\$/g, '$')
    .replace(/\$\{__trace\.traceId\}/g, '4bf92f3577b34da6a3ce929d0e0e4736');
  queries.push({ where: 'loki-datasource.yaml tracesToLogsV2', expr });
}

let failed = 0;
for (const q of queries) {
  const tree = parser.parse(q.expr);
  const errors = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(node.from);
    },
  });
  const top = tree.topNode;
  const whole = top.name === 'LogQL' && top.firstChild && top.firstChild.name === 'Expr' &&
    top.firstChild.from === 0 && top.firstChild.to === q.expr.length;
  if (errors.length || !whole) {
    failed++;
    const at = errors.length ? errors[0] : 0;
    console.log(`logql_check: FAILED: ${q.where}: syntax error at ${at}`);
    console.log(`    ${q.expr}`);
    console.log(`    ${' '.repeat(at)}^`);
    console.log(`    tree: ${tree.toString()}`);
  }
}
const count = { 'docs/loki.md': 0, dashboard: 0, datasource: 0 };
for (const q of queries) {
  if (q.where === 'docs/loki.md') count['docs/loki.md']++;
  else if (q.where.startsWith('grafana')) count.dashboard++;
  else count.datasource++;
}
if (count['docs/loki.md'] === 0 || count.dashboard === 0) {
  console.log('logql_check: FAILED: found no queries in docs/loki.md or the dashboard');
  failed++;
}
console.log(`logql_check: ${queries.length - failed} of ${queries.length} LogQL expressions parse ` +
  `(docs/loki.md ${count['docs/loki.md']}, dashboard ${count.dashboard}, data source ${count.datasource})`);
process.exit(failed ? 1 : 0);
