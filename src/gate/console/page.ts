/**
 * The console's page: static HTML, a stylesheet and a script, no build step, no external assets.
 * The HTML holds no data: the script fetches the API and renders every value with textContent,
 * so nothing a client sent (a user name, a user agent) is ever parsed as markup.
 */

/** The page's own files, served from the console's path (the CSP allows nothing else). */
export const CONSOLE_FILES = { script: 'console.js', style: 'console.css' } as const

export function consoleHtml(base: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>digest-gate console</title>
<link rel="stylesheet" href="${base}/${CONSOLE_FILES.style}">
<script src="${base}/${CONSOLE_FILES.script}" defer></script>
</head>
<body>
<header>
  <h1>digest-gate console</h1>
  <p id="viewer"></p>
  <button type="button" id="refresh">Refresh</button>
</header>
<p id="status" role="status" aria-live="polite"></p>
<main>
<section aria-labelledby="sessions-title">
  <h2 id="sessions-title">Active sessions <span class="count" id="sessions-count"></span></h2>
  <table id="sessions">
    <thead><tr>
      <th>Groups</th><th>Created</th><th>Last used</th><th>Expires</th><th>Algorithm</th>
      <th>Address (first seen)</th><th>User agent (first seen)</th><th>Requests</th><th></th>
    </tr></thead>
  </table>
  <p class="empty" id="sessions-empty" hidden>No active sessions.</p>
</section>
<section aria-labelledby="brakes-title">
  <h2 id="brakes-title">Brakes <span class="count" id="brakes-count"></span></h2>
  <table id="brakes">
    <thead><tr>
      <th>Address</th><th>User</th><th>Why</th><th>Since</th><th>Until</th><th>Next attempt</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p class="empty" id="brakes-empty" hidden>Nobody is throttled.</p>
</section>
<section aria-labelledby="refusals-title">
  <h2 id="refusals-title">Latest refusals <span class="count" id="refusals-count"></span></h2>
  <table id="refusals">
    <thead><tr>
      <th>Time</th><th>User (as sent)</th><th>Address</th><th>Request</th><th>Reason</th><th>Status</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p class="empty" id="refusals-empty" hidden>No refusals.</p>
</section>
</main>
<footer>Refreshed every 10 s. Lists are kept off the request path: last use and request counts lag by up to a minute.</footer>
</body>
</html>
`
}

/**
 * The page's script: plain ES2017, no template literals (it lives in one), no innerHTML.
 * `api` is the API's path.
 */
export function consoleScript(api: string, header: string): string {
  return `'use strict';
(function () {
  var API = ${JSON.stringify(api)};
  var HEADER = ${JSON.stringify(header)};
  var REASONS = {
    user_failures: 'failed logins of this user from this address',
    client_failures: 'failed logins from this address, all users',
    user_global_failures: 'failed logins of this user from every address',
    authority_rate: 'logins started from this address this minute'
  };
  var snapshot = { now: 0 };

  function $(id) { return document.getElementById(id); }
  function el(tag, text, className) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function clock(seconds) {
    var d = new Date(seconds * 1000);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function span(seconds) {
    var s = Math.abs(Math.round(seconds));
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }
  function when(seconds) {
    if (!seconds) return '\\u2014';
    var d = seconds - snapshot.now;
    return clock(seconds) + (d >= 0 ? ' (in ' + span(d) + ')' : ' (' + span(d) + ' ago)');
  }
  function cell(row, text, className) { row.appendChild(el('td', text, className)); }
  function status(text, isError) {
    var s = $('status');
    s.textContent = text;
    s.className = isError ? 'error' : '';
  }
  function count(id, n, total) {
    $(id + '-count').textContent = '(' + n + (total !== undefined && total > n ? ' of ' + total : '') + ')';
    $(id + '-empty').hidden = n > 0;
  }
  function getJson(path) {
    return fetch(API + path, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function post(path) {
    var headers = {};
    headers[HEADER] = '1';
    return fetch(API + path, {
      method: 'POST', headers: headers, cache: 'no-store', credentials: 'same-origin'
    }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
  }

  function revokeSession(handle, user) {
    status('Revoking a session of ' + user + '\\u2026');
    post('/sessions/' + encodeURIComponent(handle) + '/revoke').then(function (r) {
      status('Revoked ' + r.revoked + ' session of ' + user + '.');
      return refresh(true);
    }).catch(function (e) { status('Revoke failed: ' + e.message, true); });
  }
  function revokeUser(user, n) {
    if (!window.confirm('Revoke all ' + n + ' sessions of ' + user + '?')) return;
    status('Revoking every session of ' + user + '\\u2026');
    post('/users/' + encodeURIComponent(user) + '/revoke').then(function (r) {
      status('Revoked ' + r.revoked + ' sessions of ' + user + '.');
      return refresh(true);
    }).catch(function (e) { status('Revoke failed: ' + e.message, true); });
  }

  function renderSessions(data) {
    var table = $('sessions');
    var old = table.querySelectorAll('tbody');
    for (var i = 0; i < old.length; i++) table.removeChild(old[i]);
    var byUser = [];
    // A Map, not an object: a user named __proto__ would set its prototype, not a key.
    var groups = new Map();
    data.sessions.forEach(function (s) {
      if (!groups.has(s.user)) {
        groups.set(s.user, []);
        byUser.push(s.user);
      }
      groups.get(s.user).push(s);
    });
    byUser.forEach(function (user) {
      var sessions = groups.get(user);
      var body = el('tbody');
      body.setAttribute('data-user', user);
      var head = el('tr', undefined, 'user');
      var th = el('th');
      th.colSpan = 8;
      th.appendChild(el('span', user, 'name'));
      th.appendChild(el('span', sessions.length + (sessions.length === 1 ? ' session' : ' sessions'), 'muted'));
      head.appendChild(th);
      var all = el('td');
      var allButton = el('button', 'Revoke all', 'danger');
      allButton.type = 'button';
      allButton.setAttribute('data-user', user);
      allButton.addEventListener('click', function () { revokeUser(user, sessions.length); });
      all.appendChild(allButton);
      head.appendChild(all);
      body.appendChild(head);
      sessions.forEach(function (s) {
        var row = el('tr');
        row.setAttribute('data-handle', s.handle);
        cell(row, s.groups.join(', ') || '\\u2014');
        cell(row, when(s.created));
        cell(row, when(s.lastUsed));
        cell(row, when(Math.min(s.expires, s.lastUsed + s.idleTimeout)));
        cell(row, s.algorithm);
        cell(row, s.address || '\\u2014', 'mono');
        cell(row, s.userAgent || '\\u2014', 'agent');
        cell(row, '~' + s.requests, 'number');
        var action = el('td');
        var button = el('button', 'Revoke');
        button.type = 'button';
        button.setAttribute('data-handle', s.handle);
        button.title = 'Session ' + s.handle;
        button.addEventListener('click', function () { revokeSession(s.handle, user); });
        action.appendChild(button);
        row.appendChild(action);
        body.appendChild(row);
      });
      table.appendChild(body);
    });
    count('sessions', data.sessions.length, data.total);
    $('viewer').textContent = 'Signed in as ' + (data.viewer || '?') + ' \\u00b7 realm ' + data.realm;
  }

  function renderBrakes(data) {
    var body = $('brakes').tBodies[0];
    body.replaceChildren();
    data.brakes.forEach(function (b) {
      var row = el('tr');
      cell(row, b.address || '\\u2014', 'mono');
      cell(row, b.user === undefined ? '\\u2014' : b.user);
      cell(row, REASONS[b.reason] || b.reason);
      cell(row, when(b.since));
      cell(row, when(b.until));
      cell(row, when(b.nextAttempt));
      body.appendChild(row);
    });
    count('brakes', data.brakes.length);
  }

  function renderRefusals(data) {
    var body = $('refusals').tBodies[0];
    body.replaceChildren();
    data.refusals.forEach(function (r) {
      var row = el('tr');
      cell(row, when(Math.floor(r.at / 1000)));
      cell(row, r.user === '' ? '\\u2014' : r.user, 'sent');
      cell(row, r.address, 'mono');
      cell(row, r.method + ' ' + r.path, 'mono');
      cell(row, r.reason);
      cell(row, r.status, 'number');
      body.appendChild(row);
    });
    count('refusals', data.refusals.length);
  }

  function refresh(keepStatus) {
    return Promise.all([getJson('/sessions'), getJson('/brakes'), getJson('/refusals')])
      .then(function (all) {
        snapshot.now = all[0].now;
        renderSessions(all[0]);
        renderBrakes(all[1]);
        renderRefusals(all[2]);
        document.body.setAttribute('data-loaded', String(all[0].now));
        if (!keepStatus) status('');
      })
      .catch(function (e) { status('Could not load: ' + e.message, true); });
  }

  $('refresh').addEventListener('click', function () { refresh(false); });
  refresh(false);
  window.setInterval(function () { refresh(true); }, 10000);
})();
`
}

export const CONSOLE_CSS = `:root { color-scheme: light dark; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0 auto; padding: 1rem 1.5rem 2rem; max-width: 96rem; }
header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 0.5rem; }
#viewer { margin: 0; color: GrayText; flex: 1; }
.count, .muted { color: GrayText; font-weight: normal; }
.muted { margin-left: 0.75rem; }
#status { min-height: 1.4em; margin: 0.5rem 0; }
#status.error { color: #c62828; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid color-mix(in srgb, CanvasText 15%, transparent); vertical-align: top; }
thead th { font-size: 0.85rem; color: GrayText; font-weight: 600; }
tr.user th { padding-top: 0.8rem; font-size: 1rem; }
.name { font-weight: 600; }
.mono, .sent { font-family: ui-monospace, monospace; font-size: 0.85rem; }
.sent { white-space: pre-wrap; word-break: break-all; }
.agent { max-width: 22rem; overflow-wrap: anywhere; font-size: 0.85rem; }
.number { text-align: right; font-variant-numeric: tabular-nums; }
button { font: inherit; padding: 0.15rem 0.6rem; cursor: pointer; white-space: nowrap; }
button.danger { color: #c62828; }
.empty { color: GrayText; font-style: italic; }
footer { margin-top: 2rem; color: GrayText; font-size: 0.85rem; }
`
