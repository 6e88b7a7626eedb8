// The onboarding pipeline (onboarding.html), for sales, compliance, risk and admin: every application
// (GET /api/kyc/applications) by state, whose turn it is and how long it has waited, the rows awaiting the
// signed-in user's role highlighted; each links to its review page (/kyc?id=). Sales also create invitations
// (POST /api/kyc/invitations: the link is shown once, to copy), revoke them, and reissue a fresh link for one
// whose application is not final (POST /api/kyc/invitations/{id}/reissue: the old link stops working, the new one
// is shown once). Refetched on /api/events and every 30 seconds.
const READERS = ['sales', 'compliance', 'risk', 'admin'];
const OPEN = ['sales_review', 'compliance_review', 'risk_review', 'signing', 'returned', 'invited'];
const ORDER = [...OPEN, 'approved', 'suspended', 'rejected'];
const INVITATION = {active: '待客户使用', open: '待客户使用', pending: '待客户使用', issued: '待客户使用', used: '已提交申请',
  submitted: '已提交申请', expired: '已过期', revoked: '已撤销'};
let apps = [];
let filter = 'open';  // 'open' (in progress), 'all', or a state
let me = null;

const mine = (a) => a.awaiting_role === me.role;
const appName = (a) => (a.institution && typeof a.institution === 'object' ? a.institution.name : a.institution) || a.institution_name || '-';

function chips() {
  const count = (pred) => apps.filter(pred).length;
  const chip = (key, text, n) => h('button', {type: 'button', class: filter === key ? 'on' : '', data: {state: key}, text: `${text} ${n}`});
  fill($('states'),
    chip('open', '进行中', count((a) => OPEN.includes(a.state))), chip('all', '全部', apps.length),
    ORDER.map((s) => chip(s, label(KYC_STATE, s), count((a) => a.state === s))));
}

function row(a) {
  const turn = mine(a);
  const href = `/kyc?id=${encodeURIComponent(a.id)}`;
  return h('tr', {class: `app${turn ? ' mine' : ''}`, data: {id: a.id, state: a.state, awaiting: a.awaiting_role || ''}},
    h('td', {}, h('a', {href, text: appName(a)})),
    h('td', {}, kycBadge(a.state)),
    h('td', {class: turn ? 'turn' : ''}, a.awaiting_role ? `${label(KYC_ROLE, a.awaiting_role)}${turn ? '（轮到您）' : ''}` : '-'),
    h('td', {class: 'waiting', title: isNum(a.waiting_s) ? `${Math.round(a.waiting_s)} 秒` : '', text: waited(a.waiting_s)}),
    h('td', {text: when(a.updated_at)}),
    h('td', {}, h('a', {href, text: turn ? '去审核' : '查看'})));
}

function render() {
  chips();
  const onlyMine = $('mine-only').checked;
  const shown = apps.filter((a) => (filter === 'all' || (filter === 'open' ? OPEN.includes(a.state) : a.state === filter)) && (!onlyMine || mine(a)))
    .sort((a, b) => (mine(b) - mine(a)) || ORDER.indexOf(a.state) - ORDER.indexOf(b.state) || (b.waiting_s || 0) - (a.waiting_s || 0));
  fill(document.querySelector('#apps tbody'), shown.map(row));
  $('apps-empty').hidden = shown.length > 0;
  const waiting = apps.filter(mine).length;
  $('count').textContent = `共 ${apps.length} 份申请 · 待${label(ROLE, me.role)}处理 ${waiting} 份`;
}

async function load() {
  apps = await api('/api/kyc/applications');
  render();
  if (me.role === 'sales' || me.role === 'admin') await loadInvitations();
}

// ---- invitations (sales) ---------------------------------------------------------------------------------
async function loadInvitations() {
  const list = await api('/api/kyc/invitations');
  $('inv-card').hidden = false;
  fill(document.querySelector('#invitations tbody'), list.map((i) => {
    const id = i.invitation_id || i.id;
    const status = i.status || i.state || (i.revoked_at ? 'revoked' : '');
    const open = !['revoked', 'expired', 'used', 'submitted'].includes(status) && !i.revoked_at;
    const reissuable = status !== 'used' && !['approved', 'rejected'].includes(i.application_state);
    return h('tr', {class: 'invitation', data: {id, status, name: i.institution_name || ''}},
      h('td', {text: i.institution_name || '-'}), h('td', {text: i.contact_name || '-'}),
      h('td', {class: 'inv-status', text: label(INVITATION, status)}),
      h('td', {text: `${i.created_by || ''} ${when(i.created_at)}`.trim()}), h('td', {text: when(i.expires_at)}),
      h('td', {}, open ? h('button', {type: 'button', class: 'reject revoke', text: '撤销'}) : null,
        reissuable ? h('button', {type: 'button', class: 'plain reissue', text: '重新发放链接'}) : null));
  }));
  $('inv-empty').hidden = list.length > 0;
}

async function copy(input, note) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch (ex) {  // no clipboard API outside a secure context: select it for the user
    input.select();
    document.execCommand('copy');
  }
  note.textContent = '已复制';
}

async function invite(e) {
  e.preventDefault();
  const err = $('inv-err');
  err.textContent = '';
  $('inv-create').disabled = true;
  try {
    const inv = await api('/api/kyc/invitations', {method: 'POST', body: JSON.stringify({
      institution_name: $('inv-name').value.trim(), contact_name: $('inv-contact').value.trim(), contact_mobile: $('inv-mobile').value.trim()})});
    showOnce($('inv-once'), `${$('inv-name').value.trim()} 的邀请链接`, inv);
    $('invite').reset();
    await loadInvitations();
  } catch (ex) {
    err.textContent = `生成失败：${ex.message}`;
  } finally {
    $('inv-create').disabled = false;
  }
}

// a new link, shown this once (the server keeps only its hash)
function showOnce(where, title, inv) {
  const link = h('input', {id: 'inv-url', readonly: true, value: inv.url});
  const note = h('span', {class: 'meta ok'});
  const btn = h('button', {type: 'button', class: 'plain', id: 'inv-copy', text: '复制链接'});
  btn.addEventListener('click', () => copy(link, note));
  document.querySelectorAll('#inv-once, #reissue-once').forEach((c) => fill(c));
  fill(where, h('div', {class: 'once'},
    h('p', {}, h('strong', {text: title}), `（有效期至 ${when(inv.expires_at)}）`),
    link, h('div', {class: 'actions'}, btn, note),
    h('p', {class: 'meta', text: '此链接只显示这一次，离开本页后无法再次查看；请通过安全渠道发给客户联系人本人，不要转发到群聊。'})));
}

async function reissue(tr) {
  if (!confirm('重新发放后，客户手中的旧链接立即失效，确定重新发放？')) return;
  try {
    const inv = await api(`/api/kyc/invitations/${encodeURIComponent(tr.dataset.id)}/reissue`, {method: 'POST', body: '{}'});
    showOnce($('reissue-once'), `${tr.dataset.name} 的新链接（旧链接已失效）`, inv);
    await loadInvitations();
  } catch (ex) {
    $('reissue-err').textContent = `重新发放失败：${ex.message}`;
  }
}

async function revoke(tr) {
  if (!confirm('撤销后客户将无法再使用这条邀请链接，确定撤销？')) return;
  try {
    await api(`/api/kyc/invitations/${encodeURIComponent(tr.dataset.id)}/revoke`, {method: 'POST', body: '{}'});
    await loadInvitations();
  } catch (ex) {
    $('inv-err').textContent = `撤销失败：${ex.message}`;
  }
}

(async () => {
  me = await whoami();
  if (!READERS.includes(me.role)) { denied($('page'), `客户准入页面仅限销售、合规、风控与管理员（当前角色：${label(ROLE, me.role)}）`); return; }
  if (me.role === 'sales') {
    $('invite-card').hidden = false;
    $('invite').addEventListener('submit', invite);
  }
  $('invitations').addEventListener('click', (e) => {
    const b = e.target.closest('button.revoke, button.reissue');
    if (b) (b.classList.contains('reissue') ? reissue : revoke)(b.closest('tr'));
  });
  $('states').addEventListener('click', (e) => { const b = e.target.closest('button'); if (b) { filter = b.dataset.state; render(); } });
  $('mine-only').addEventListener('change', render);
  const reload = () => load().catch((ex) => { $('count').textContent = `加载失败：${ex.message}`; });
  await reload();
  live(['kyc', 'onboarding'], reload, reload);
})();
