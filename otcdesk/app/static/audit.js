// The audit page (/audit): the state of the audit log's hash chain, for compliance and admin (GET /api/audit/verify).
const $ = (id) => document.getElementById(id);

async function api(path) {
  const r = await fetch(path);
  if (r.status === 401) { location.href = '/login'; throw new Error('login'); }
  const body = await r.json(); if (!r.ok) throw new Error(body.error || r.statusText); return body;
}

function show(state, text, cls) {
  const el = $('chain-state');
  el.dataset.state = state; el.textContent = text; el.className = cls;
}

async function verify() {
  show('pending', '校验中…', 'meta');
  try {
    const v = await api('/api/audit/verify');
    if (v.ok) show('ok', '完整：每条记录都与前一条的哈希相连', 'ok');
    else show('broken', '已损坏：审计日志在服务之外被改动过', 'err');
    $('chain-entries').textContent = String(v.entries);
    $('chain-head').textContent = v.head ? `#${v.head.id} ${v.head.hash}` : '（空）';
    $('chain-broken').textContent = v.first_broken ? `#${v.first_broken.id}：${v.first_broken.reason}` : '无';
    $('chain-facts').hidden = false;
  } catch (ex) {
    $('chain-facts').hidden = true;
    show('error', `${ex.message}（审计链校验仅限合规与管理员）`, 'err');
  }
}

document.addEventListener('DOMContentLoaded', async () => {
  $('reverify').addEventListener('click', verify);
  const me = await api('/api/me');
  $('who').textContent = `${me.user}（${me.role}）`;
  $('survlink').hidden = me.role !== 'compliance';
  await verify();
});
