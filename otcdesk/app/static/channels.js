// The channels page (/channels): the channels' health (health.js) and the canary allowlist (GET /api/admin/canary);
// the admin turns canary mode on or off and puts groups in or out (POST /api/admin/canary, /api/admin/canary/groups).
const CHANNEL = {sim: '群聊模拟器', wechat: '微信群', wecom: '企业微信'};
let isAdmin = false;

function render(state) {
  const mode = $('canary-mode');
  mode.dataset.enabled = String(state.enabled);
  mode.textContent = state.enabled ? '灰度已开启：只有名单中的群得到草稿' : '灰度关闭：所有群照旧得到草稿';
  mode.className = state.enabled ? 'badge breach' : 'badge';
  $('canary-updated').textContent = state.updated_by ? `${state.updated_by} 于 ${when(state.updated_at)} 设置` : '';
  $('canary-toggle').textContent = state.enabled ? '关闭灰度（所有群）' : '开启灰度（仅名单）';
  $('canary-toggle').dataset.enable = String(!state.enabled);
  fill(document.querySelector('#canary-groups tbody'), state.groups.map((g) => h('tr', {data: {group: `${g.channel}:${g.group_id}`}},
    h('td', {text: label(CHANNEL, g.channel)}), h('td', {class: 'group-id', text: g.group_id}), h('td', {text: g.added_by}),
    h('td', {text: when(g.added_at)}),
    isAdmin ? h('td', {}, h('button', {class: 'plain remove', text: '移出', onclick: () => change('/api/admin/canary/groups',
      {channel: g.channel, group_id: g.group_id, in: false})})) : null)));
  $('canary-empty').hidden = state.groups.length > 0;
  const select = $('canary-channel');
  if (!select.options.length) fill(select, state.channels.map((c) => h('option', {value: c, text: label(CHANNEL, c)})));
}

async function change(path, body) {
  $('canary-error').textContent = '';
  const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  if (r.status === 401) { location.href = '/login'; return false; }
  const out = await r.json();
  if (!r.ok) {  // a refused change names the fields and their rules
    const fields = Object.entries((out.detail && out.detail.fields) || {}).map(([k, v]) => `${k}：${v}`);
    $('canary-error').textContent = [out.error, ...fields].join('；');
    return false;
  }
  render(out);
  return true;
}

document.addEventListener('DOMContentLoaded', async () => {
  const me = await whoami();
  isAdmin = me.role === 'admin';
  document.querySelectorAll('.admin-only').forEach((n) => { n.hidden = !isAdmin; });
  $('canary-toggle').addEventListener('click', () => change('/api/admin/canary', {enabled: $('canary-toggle').dataset.enable === 'true'}));
  $('canary-add').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (await change('/api/admin/canary/groups', {channel: $('canary-channel').value, group_id: $('canary-group').value.trim(), in: true})) $('canary-group').value = '';
  });
  try { render(await api('/api/admin/canary')); } catch (ex) { $('canary-error').textContent = ex.message; }
});
