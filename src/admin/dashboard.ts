// The admin dashboard (`/` on :9990): one self-contained page, no external assets. It polls the
// admin JSON endpoints: golden signals per service (/admin/services.json) with sparklines of the
// last five minutes, each service's resilience (retry rate over the last minute, retries, budget
// exhausted, requeues, timeouts, endpoints failure accrual marks dead; same JSON), bound clients and stale discovery (/client_state.json), and a dtab
// playground over /delegator.json showing each delegation step with the dentry that applied;
// beside it an authorization explain box (/authz/explain.json), and each destination's callers by
// identity with allowed and denied counts (/authz/callers.json).
// All data is inserted with textContent (names and dtabs come from requests: never as HTML).

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#1d2430;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
header h1{font-size:18px;margin:0}
main{padding:16px 20px;display:grid;gap:16px}
section{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;font-variant-numeric:tabular-nums}
th{font-weight:600;color:#566}
.bad{color:#b3261e;font-weight:600}.ok{color:#1b7f3b}.stale{color:#a15c00;font-weight:600}
svg.spark{width:120px;height:24px}
form{display:grid;grid-template-columns:auto 1fr;gap:6px 10px;align-items:center;max-width:900px}
input,select,textarea{font:13px ui-monospace,monospace;padding:4px}
textarea{height:60px}
ul.tree{list-style:none;padding-left:18px;margin:2px 0;border-left:1px dotted #99a}
ul.tree li{margin:2px 0}
code{font:12px ui-monospace,monospace;background:#eef0f3;padding:1px 4px;border-radius:3px}
.kind{display:inline-block;min-width:70px;font-weight:600}
#error,#explain-error{color:#b3261e}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
`;

const JS = `
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const history = new Map(); // key -> [{t, requests, failures}]
const WINDOW_MS = 5 * 60 * 1000;

function spark(points) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '0 0 120 24');
  if (points.length > 1) {
    const max = Math.max(...points, 0.001);
    const d = points.map((v, i) => (i === 0 ? 'M' : 'L') + (i * 120 / (points.length - 1)).toFixed(1) + ' ' + (23 - v / max * 22).toFixed(1)).join(' ');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill', 'none');
    path.setAttribute('stroke', '#2a6fdb');
    path.setAttribute('stroke-width', '1.5');
    svg.appendChild(path);
  }
  return svg;
}

async function refreshServices() {
  const r = await fetch('/admin/services.json');
  const data = await r.json();
  const body = $('services');
  body.replaceChildren();
  for (const s of data.services) {
    const key = s.router + ' ' + s.service;
    const h = history.get(key) || [];
    h.push({ t: data.at, requests: s.requests, failures: s.failures });
    while (h.length > 2 && data.at - h[0].t > WINDOW_MS) h.shift();
    history.set(key, h);
    const rates = [];
    for (let i = 1; i < h.length; i++) rates.push((h[i].requests - h[i - 1].requests) / Math.max(0.001, (h[i].t - h[i - 1].t) / 1000));
    const last = rates.length ? rates[rates.length - 1] : 0;
    const success = s.requests ? (s.successes / s.requests) * 100 : 100;
    const tr = el('tr');
    tr.dataset.service = s.service;
    tr.append(el('td', s.router), el('td', s.service), el('td', last.toFixed(1)));
    const sp = el('td'); sp.appendChild(spark(rates)); tr.appendChild(sp);
    tr.append(el('td', success.toFixed(1) + '%', success < 99 ? 'bad' : 'ok'), el('td', String(s.requests)), el('td', s.p50.toFixed(1)), el('td', s.p95.toFixed(1)), el('td', s.p99.toFixed(1)));
    body.appendChild(tr);
  }
  if (!data.services.length) { const tr = el('tr'); const td = el('td', 'no traffic yet'); td.colSpan = 9; tr.appendChild(td); body.appendChild(tr); }
  renderResilience(data.services);
  const rs = $('routers'); rs.replaceChildren();
  for (const r of data.routers) {
    const li = el('li', r.label + ': ' + r.connections.server + ' client connections in, ' + r.connections.client + ' connections out, ' + r.inFlight + ' in flight');
    if (r.peers && r.peers.length) {
      const ul = el('ul', undefined, 'peers');
      for (const p of r.peers) ul.appendChild(el('li', 'peer ' + p.identity + ' (mTLS verified): ' + p.connections + ' open, ' + p.total + ' total', p.connections ? 'ok' : ''));
      li.appendChild(ul);
    }
    rs.appendChild(li);
  }
}

// Per service: the retry rate is the server's (retries / requests answered in the last minute);
// the counts are since the router started.
function renderResilience(services) {
  const body = $('resilience');
  body.replaceChildren();
  for (const s of services) {
    const r = s.resilience;
    const tr = el('tr');
    tr.dataset.service = s.service;
    tr.dataset.router = s.router;
    const rate = r.retryRate === null ? '-' : (r.retryRate * 100).toFixed(1) + '%';
    const dead = r.deadEndpoints.map((e) => e.address + ' [' + e.accrual + ']').join(', ');
    tr.append(
      el('td', s.router), el('td', s.service),
      el('td', rate + ' (' + r.lastMinute.retries + '/' + r.lastMinute.requests + ')', 'retry-rate'),
      el('td', String(r.retries), 'retries'),
      el('td', String(r.budgetExhausted), r.budgetExhausted ? 'budget-exhausted bad' : 'budget-exhausted'),
      el('td', String(r.requeues), 'requeues'),
      el('td', String(r.timeouts), r.timeouts ? 'timeouts bad' : 'timeouts'),
      el('td', dead || '-', dead ? 'dead-endpoints bad' : 'dead-endpoints'),
    );
    body.appendChild(tr);
  }
  if (!services.length) { const tr = el('tr'); const td = el('td', 'no traffic yet'); td.colSpan = 8; tr.appendChild(td); body.appendChild(tr); }
}

async function refreshClients() {
  const r = await fetch('/client_state.json');
  const data = await r.json();
  const body = $('clients');
  body.replaceChildren();
  for (const [router, clients] of Object.entries(data)) {
    for (const c of clients) {
      const tr = el('tr');
      // Failure accrual: an endpoint marked dead (or out on its probe) says so beside its address.
      const eps = c.endpoints.map((e) => e.address + (e.nodeName ? ' (' + e.nodeName + ')' : '') + (e.accrual && e.accrual !== 'alive' ? ' [' + e.accrual + ']' : '')).join(', ');
      tr.append(el('td', router), el('td', c.id), el('td', c.stale ? 'stale' : c.state, c.stale ? 'stale' : ''), el('td', eps || '-'));
      body.appendChild(tr);
    }
  }
}

function renderNode(node) {
  const li = el('li');
  li.appendChild(el('span', node.type, 'kind'));
  li.appendChild(el('code', node.path));
  if (node.dentry) li.append(' via ', el('code', node.dentry.prefix + ' => ' + node.dentry.dst));
  if (node.type === 'leaf' && node.bound) {
    const a = node.bound.addr || {};
    const addrs = a.type === 'bound' ? a.addrs.map((x) => x.ip + ':' + x.port + (x.meta && x.meta.nodeName ? ' (' + x.meta.nodeName + ')' : '')).join(', ') : a.type;
    li.append(' bound ', el('code', node.bound.id), ' -> ', el('span', addrs || 'no addresses', 'addrs'));
  }
  if (node.type === 'exception') li.append(' ', el('span', node.message, 'bad'));
  const kids = node.delegate ? [node.delegate] : node.alt ? node.alt : node.union ? node.union.map((m) => m.tree) : [];
  if (kids.length) {
    const ul = el('ul', undefined, 'tree');
    node.union ? node.union.forEach((m) => { const c = renderNode(m.tree); c.prepend(el('span', m.weight + ' * ')); ul.appendChild(c); }) : kids.forEach((k) => ul.appendChild(renderNode(k)));
    li.appendChild(ul);
  }
  return li;
}

async function delegate(ev) {
  ev.preventDefault();
  $('error').textContent = '';
  const q = new URLSearchParams({ router: $('router').value, path: $('path').value, dtab: $('dtab').value });
  const r = await fetch('/delegator.json?' + q);
  const out = $('delegation');
  out.replaceChildren();
  if (!r.ok) { $('error').textContent = await r.text(); return; }
  const ul = el('ul', undefined, 'tree');
  ul.appendChild(renderNode(await r.json()));
  out.appendChild(ul);
}

async function refreshAuthz() {
  const r = await fetch('/authz/callers.json');
  const data = await r.json();
  $('authz-mode').textContent = data.policy ? 'policy in force; decided at the incoming router on the final destination' : 'no policy configured: every call is allowed';
  const body = $('authz-callers');
  body.replaceChildren();
  for (const router of data.routers) {
    for (const d of router.destinations) {
      for (const c of d.callers) {
        const tr = el('tr');
        tr.dataset.destination = d.destination;
        tr.append(el('td', router.label), el('td', d.destination), el('td', c.identity), el('td', String(c.allowed) + (c.audited ? ' (' + c.audited + ' audit)' : '')), el('td', String(c.denied), c.denied ? 'bad' : ''));
        body.appendChild(tr);
      }
    }
  }
  if (!body.children.length) { const tr = el('tr'); const td = el('td', 'no decisions yet'); td.colSpan = 5; tr.appendChild(td); body.appendChild(tr); }
}

async function explain(ev) {
  ev.preventDefault();
  $('explain-error').textContent = '';
  const q = new URLSearchParams({ from: $('from').value, to: $('to').value, method: $('method').value, path: $('reqpath').value });
  const r = await fetch('/authz/explain.json?' + q);
  const out = $('explain-result');
  out.replaceChildren();
  const data = await r.json();
  if (!r.ok) { $('explain-error').textContent = data.error; return; }
  const verdict = data.decision === 'allow' ? (data.audit ? 'allow (audit: would deny when enforced)' : 'allow') : 'deny';
  out.append(el('div', verdict, data.decision === 'allow' && !data.audit ? 'ok' : 'bad'));
  out.append(el('div', 'decided by: ' + (data.rule ? 'rule ' + data.rule : 'the namespace default (' + data.default + ')')));
  out.append(el('div', 'reason: ' + data.reason));
  out.append(el('div', 'l5d-dtab overrides from this caller: ' + (data.dtabOverrideAllowed ? 'allowed' : 'refused')));
  out.append(el('div', 'policy: ' + data.policy));
}

async function init() {
  const routers = await (await fetch('/admin/routers.json')).json();
  for (const r of routers) { const o = el('option', r.label); o.value = r.label; $('router').appendChild(o); }
  const show = () => { const r = routers.find((x) => x.label === $('router').value); $('basedtab').textContent = r ? r.dtab : ''; };
  $('router').addEventListener('change', show); show();
  $('playground').addEventListener('submit', (ev) => { delegate(ev).catch((e) => { $('error').textContent = String(e); }); });
  $('explain').addEventListener('submit', (ev) => { explain(ev).catch((e) => { $('explain-error').textContent = String(e); }); });
  const tick = () => Promise.all([refreshServices(), refreshClients(), refreshAuthz()]).catch((e) => { $('status').textContent = 'admin unreachable: ' + e; });
  await tick();
  setInterval(tick, 2000);
}
init();
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hostmesh</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,">
<style>${CSS}</style></head>
<body>
<header><h1>hostmesh</h1><span id="status">live, refreshed every 2 s</span></header>
<main>
<section><h2>Services</h2>
<table><thead><tr><th>router</th><th>service</th><th>req/s</th><th>last 5 min</th><th>success</th><th>requests</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr></thead>
<tbody id="services"></tbody></table></section>
<section><h2>Resilience (per service)</h2>
<table><thead><tr><th>router</th><th>service</th><th title="retries / requests answered, last minute">retry rate (1 min)</th><th>retries</th><th>budget exhausted</th><th>requeues</th><th>timeouts</th><th>endpoints marked dead</th></tr></thead>
<tbody id="resilience"></tbody></table></section>
<section><h2>Routers</h2><ul id="routers"></ul></section>
<section><h2>Clients (bound names and discovery)</h2>
<table><thead><tr><th>router</th><th>bound name</th><th>state</th><th>endpoints</th></tr></thead><tbody id="clients"></tbody></table></section>
<div class="pair">
<section><h2>Dtab playground</h2>
<form id="playground">
<label for="router">router</label><select id="router"></select>
<span>router dtab</span><code id="basedtab"></code>
<label for="path">path</label><input id="path" value="/svc/world" spellcheck="false">
<label for="dtab">override (l5d-dtab)</label><textarea id="dtab" spellcheck="false" placeholder="/svc/world => /svc/world-v2;"></textarea>
<span></span><button type="submit">Delegate</button>
</form>
<div id="error"></div><div id="delegation"></div>
</section>
<section><h2>Authorization explain</h2>
<form id="explain">
<label for="from">from</label><input id="from" value="unauthenticated" spellcheck="false" title="unauthenticated, an identity, or namespace/serviceaccount">
<label for="to">to</label><input id="to" value="default/world" spellcheck="false" title="namespace/service[:port], or a bound name">
<label for="method">method</label><input id="method" value="GET" spellcheck="false">
<label for="reqpath">path</label><input id="reqpath" value="/" spellcheck="false">
<span></span><button type="submit">Explain</button>
</form>
<div id="explain-error"></div><div id="explain-result"></div>
</section>
</div>
<section><h2>Callers (authorization)</h2><p id="authz-mode"></p>
<table><thead><tr><th>router</th><th>destination</th><th>caller</th><th>allowed</th><th>denied</th></tr></thead><tbody id="authz-callers"></tbody></table></section>
</main>
<script>${JS}</script>
</body></html>
`;
