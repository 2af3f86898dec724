"""The dashboard: ``GET /ui`` (one self-contained page) and ``GET /ui/data`` (what it shows).

The page is plain HTML, CSS and a small script in this module: no CDN, no build step, it
works offline.  Every 1.5 s it reads ``/ui/data`` and redraws: each instance with its
state, models (loaded, or only loadable), requests in flight, breaker and last probe age,
its request rate and mean latency since the previous poll (from the router's cumulative
counters), the client keys' use, and the latest decisions with their traces.  The page
itself needs no key; ``/ui/data`` needs the admin key when ``admin_key_env`` is set (see
:mod:`routing._gateway_auth`): the page then asks for it, keeps it in ``sessionStorage``
and sends it as ``Authorization: Bearer``.  Every text from the data is set with
``textContent`` (model names come from upstream servers); a Content-Security-Policy
admits only this page's own script and style, by hash.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing._decisions import DecisionLog
from routing._gateway_auth import GATEKEEPER
from routing._gateway_http import POOL, dumps, public_row

if TYPE_CHECKING:
    from routing._engine import Router

__all__ = ["DECISIONS", "PAGE", "add_routes", "dashboard_data"]

#: The app key holding the gateway's :class:`~routing._decisions.DecisionLog`.
DECISIONS = web.AppKey("routing.decisions", DecisionLog)

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
header{display:flex;gap:1em;align-items:baseline;padding:.6em 1em;background:#263238;color:#eee}
header h1{font-size:18px;margin:0}header .meta{opacity:.75;font-size:12px}
main{padding:0 1em 2em}h2{font-size:15px;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff;width:100%}table.fit{width:auto}
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{font-size:12px;color:#666;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.st{display:inline-block;padding:0 .5em;border-radius:3px;font-size:12px;font-weight:600;color:#fff}
.READY{background:#2e7d32}.LOADING{background:#f9a825}.DOWN{background:#c62828}
.UNHEALTHY{background:#6a1b9a}.MISCONFIGURED{background:#ef6c00}
.m{display:inline-block;margin:0 .4em .1em 0}.cold{color:#999}
.dim{color:#888}.err{color:#c62828}.ok{color:#2e7d32}
details{background:#fff;border-bottom:1px solid #e3e3e3;padding:.3em .6em}
summary{cursor:pointer}summary span{margin-right:.8em}details table{margin:.3em 0 .2em}
tr.chosen td{font-weight:600}#login{background:#fff;padding:1em;max-width:28em}
#login input{width:18em}
"""

_SCRIPT = """
const $ = (id) => document.getElementById(id);
const KEY = 'routing-admin-key';
let prev = null, timer = null, seq = 0;
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.append(c instanceof Node ? c : el('td', c));
  return tr;
}
function num(text) { return el('td', text, 'n'); }
function ago(s) { return s === null || s === undefined ? 'never' : s.toFixed(1) + ' s ago'; }
function models(r) {
  const td = el('td');
  const loaded = new Set(r.loaded), ready = r.state === 'READY';
  if (!r.models.length) td.append(el('span', '-', 'dim'));
  for (const m of r.models) {
    const warm = loaded.has(m);
    const s = el('span', !ready || warm ? m : m + ' (loadable)', warm ? 'm' : 'm cold');
    s.title = !ready ? 'last known' : warm ? 'loaded'
      : 'not loaded: a request would make the server load it';
    td.append(s);
  }
  return td;
}
function instances(data) {
  const body = $('instances');
  const rows = [];
  for (const r of data.instances) {
    let rate = '-', lat = '-', latCls = 'n dim';
    if (r.requests_total) lat = (r.latency_sum / r.requests_total * 1000).toFixed(0) + ' ms';
    const p = prev && prev.rows[r.instance];
    if (p && data.now > prev.now) {
      const dn = r.requests_total - p.n;
      rate = (dn / (data.now - prev.now)).toFixed(2) + '/s';
      if (dn > 0) {
        lat = ((r.latency_sum - p.sum) / dn * 1000).toFixed(0) + ' ms';
        latCls = 'n';
      }
    }
    const latCell = el('td', lat, latCls);
    latCell.title = latCls === 'n' ? 'mean since the last poll' : 'mean since the start';
    const state = el('td');
    state.append(el('span', r.state, 'st ' + r.state));
    if (r.detail && r.state !== 'READY') state.append(el('div', r.detail, 'dim'));
    const tr = row([el('td', r.instance), state, models(r), num(r.inflight), num(rate),
                    latCell, el('td', r.breaker + (r.failures ? ' (' + r.failures + ')' : '')),
                    el('td', ago(r.last_probe_age))]);
    tr.dataset.instance = r.instance;
    tr.dataset.state = r.state;
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  prev = {now: data.now, rows: Object.fromEntries(data.instances.map(
    (r) => [r.instance, {n: r.requests_total, sum: r.latency_sum}]))};
}
function keys(data) {
  $('keys-section').hidden = !data.keys.length;
  $('keys').replaceChildren(...data.keys.map((k) => row([
    el('td', k.name), num(k.requests), num(k.inflight), num(k.prompt_tokens),
    num(k.completion_tokens)])));
}
function trace(d) {
  const t = el('table');
  t.append(row(['', 'candidate', 'state', 'models', 'in flight', 'why'].map((h) => el('th', h))));
  for (const c of d.candidates) {
    const tr = row([c.chosen ? '\\u2192' : '', c.instance, c.state,
                    c.models.join(', ') || '-', num(c.inflight), c.why]);
    if (c.chosen) tr.className = 'chosen';
    t.append(tr);
  }
  return t;
}
function decisions(data) {
  const items = data.decisions.map((d, i) => {
    const box = el('details');
    box.open = i === 0;
    box.className = 'decision';
    const s = el('summary');
    s.append(el('span', new Date(d.at * 1000).toLocaleTimeString(), 'dim'),
             el('span', d.status, d.status < 400 ? 'ok' : 'err'),
             el('span', d.method + ' ' + d.path),
             el('span', (d.requested_model || d.model || '(any model)') + ' \\u2192 ' + d.instance),
             el('span', d.latency_ms + ' ms', 'dim'));
    if (d.key) s.append(el('span', 'key ' + d.key, 'dim'));
    if (d.failovers) s.append(el('span', d.failovers + ' failover(s)', 'err'));
    box.append(s, el('div', d.reason), trace(d));
    return box;
  });
  $('decisions').replaceChildren(...items);
  $('no-decisions').hidden = items.length > 0;
}
async function poll() {
  const mine = ++seq;
  clearTimeout(timer);
  const key = sessionStorage.getItem(KEY);
  try {
    const r = await fetch('ui/data', {cache: 'no-store',
      headers: key ? {Authorization: 'Bearer ' + key} : {}});
    if (r.status === 401) {
      if (key) sessionStorage.removeItem(KEY);
      $('login').hidden = false; $('dash').hidden = true;
      $('login-error').textContent = key ? 'That is not the admin key.' : '';
      $('updated').textContent = 'needs the admin key';
      return;
    }
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const data = await r.json();
    $('login').hidden = true; $('dash').hidden = false;
    $('config').textContent = data.config + ' (generation ' + data.generation + ')';
    instances(data); keys(data); decisions(data);
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    $('updated').textContent = 'cannot reach the gateway (' + e.message + ')';
  } finally {
    if (mine === seq) timer = setTimeout(poll, 1500);
  }
}
$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $('admin-key').value);
  $('admin-key').value = '';
  poll();
});
poll();
"""

_BODY = """<header><h1>routing</h1><span id="config" class="meta"></span>
<span id="updated" class="meta">loading…</span></header>
<main>
<form id="login" hidden><h2>Admin key</h2>
<p>This gateway's dashboard needs its admin key (the value of <code>admin_key_env</code>).
It stays in this tab only.</p>
<input id="admin-key" type="password" autocomplete="off" placeholder="admin key">
<button type="submit">Show</button> <span id="login-error" class="err"></span></form>
<div id="dash" hidden>
<h2>Instances</h2>
<table><thead><tr><th>instance</th><th>state</th><th>models</th><th>in flight</th>
<th>rate</th><th>latency</th><th>breaker</th><th>last probe</th></tr></thead>
<tbody id="instances"></tbody></table>
<div id="keys-section" hidden><h2>Client keys</h2>
<table class="fit"><thead><tr><th>key</th><th>requests</th><th>in flight</th><th>prompt tokens</th>
<th>completion tokens</th></tr></thead><tbody id="keys"></tbody></table></div>
<h2>Latest decisions</h2><p id="no-decisions" class="dim">No request routed yet.</p>
<div id="decisions"></div>
</div>
</main>"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The whole page, as served.
PAGE = (
    f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
    f'<meta name="viewport" content="width=device-width, initial-scale=1">'
    f"<title>routing</title><style>{_STYLE}</style></head><body>{_BODY}"
    f"<script>{_SCRIPT}</script></body></html>"
).encode()

_HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; connect-src 'self'; "
    f"style-src {_sha256(_STYLE)}; script-src {_sha256(_SCRIPT)}; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE, content_type="text/html", charset="utf-8", headers=_HEADERS)


def dashboard_data(app: web.Application, router: Router) -> dict[str, Any]:
    """What ``/ui/data`` answers: instances with their cumulative request counts and latency
    sums (the page turns two polls into a rate), client keys' use, the latest decisions."""
    pool = app[POOL]
    metrics = router.metrics
    errors: dict[str, int] = {}
    for (inst, _model, outcome), n in metrics.requests.items():
        if outcome != "ok":
            errors[inst] = errors.get(inst, 0) + n
    rows = []
    for row in router.status():
        key = row["instance"]
        rows.append(
            {
                **public_row(row),
                "requests_total": metrics.latency_count.get(key, 0),
                "errors_total": errors.get(key, 0),
                "latency_sum": round(metrics.latency_sum.get(key, 0.0), 6),
            }
        )
    auth = router.config.gateway.auth
    keeper = app[GATEKEEPER]
    usage = keeper.usage
    keys = (
        []
        if auth is None
        else [
            {
                "name": k.name,
                "requests": sum(n for (name, _), n in usage.requests.items() if name == k.name),
                "inflight": keeper.inflight(k.name),
                "prompt_tokens": usage.prompt_tokens[k.name],
                "completion_tokens": usage.completion_tokens[k.name],
            }
            for k in auth.keys
        ]
    )
    log = app[DECISIONS]
    return {
        "config": router.config.source,
        "generation": pool.generation,
        "now": time.time(),
        "instances": rows,
        "keys": keys,
        "decisions": log.latest(),
        "decisions_total": log.total,
    }


async def _data(request: web.Request) -> web.Response:
    async with request.app[POOL].use() as router:
        # Probes what is older than the probe ttl (fresh results are kept), so the states
        # shown are never older than a ttl plus a poll, even when no request comes.
        await router.models()
        data = dashboard_data(request.app, router)
    return web.Response(
        body=dumps(data), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


def add_routes(app: web.Application) -> None:
    """Add ``GET /ui`` and ``GET /ui/data`` to ``app`` (which holds :data:`DECISIONS`)."""
    app.router.add_get("/ui", _page)
    app.router.add_get("/ui/data", _data)
