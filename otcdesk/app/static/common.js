/* Shared by the console pages: HTML escaping and the JSON API call (401 goes to the login page). */
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function api(path, opts={}) {
  const r = await fetch(path, {headers: {'Content-Type': 'application/json'}, ...opts});
  if (r.status === 401) { location.href = '/login'; throw new Error('login'); }
  const body = await r.json(); if (!r.ok) throw new Error(body.error || r.statusText); return body;
}
