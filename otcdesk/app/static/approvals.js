// The second-approval queue (approvals.html), for risk: trades in `pending_second_approval` (GET
// /api/trades?status=pending_second_approval), oldest first, each approved with POST /api/trades/{id}/approve by
// a risk user who did not book it (the API refuses the booker with 403 and its reason, shown on the card).
// Live over /api/events (kind `trade`) with a periodic refetch.
const PENDING = 'pending_second_approval';
const pending = new Map();
const approving = new Set();  // approved from this page: its own event is not news
let me = null;

function card(t) {
  const p = t.product || {};
  const mine = t.booked_by === me.user;
  return h('div', {class: 'card item approval', data: {id: t.id}},
    h('h3', {}, statusBadge(t.status), h('a', {class: 'mono', href: `/trades#${encodeURIComponent(t.id)}`, text: t.id}),
      ` · ${t.institution || '-'} · ${t.client || '-'}`),
    h('table', {class: 'facts'}, h('tbody', {},
      h('tr', {}, h('th', {text: '标的 / 结构'}), h('td', {text: `${t.underlying || p.underlying || '-'} ${p.underlying_name || ''} ${structureOf(p)}`}),
        h('th', {text: '期限'}), h('td', {text: p.tenor || (p.maturity_date ? `至 ${p.maturity_date}` : '-')})),
      h('tr', {}, h('th', {text: '名义本金'}), h('td', {class: 'num notional', text: money(t.notional)}),
        h('th', {text: '价格 % / 权利金'}), h('td', {class: 'num', text: `${fixed(t.price_pct, 3)} / ${money(t.premium_cny)}`})),
      h('tr', {}, h('th', {text: '建仓指令'}), h('td', {text: executionText(t.execution)}),
        h('th', {text: '簿记'}), h('td', {text: `${t.booked_by || '-'} · ${when(t.booked_at)}`})))),
    mine ? h('p', {class: 'meta expiring booker', text: '您是这笔交易的簿记人：按四眼原则须由另一位风控人员复核。'}) : null,
    h('div', {class: 'actions'}, h('button', {class: 'approve', text: '复核通过'})),
    h('div', {class: 'err msg-err'}));
}

function render() {
  const list = [...pending.values()].sort((a, b) => (a.booked_at || '').localeCompare(b.booked_at || '') || a.id.localeCompare(b.id));
  $('count').textContent = `待第二复核 ${list.length} 笔`;
  const q = clear($('queue'));
  if (!list.length) { q.append(h('div', {class: 'card empty', id: 'empty', text: '没有待第二复核的交易'})); return; }
  q.append(...list.map(card));
}

async function load() {
  const list = await api(`/api/trades?status=${PENDING}`);
  const errors = new Map([...document.querySelectorAll('.approval')].map((c) => [c.dataset.id, c.querySelector('.msg-err').textContent]));
  pending.clear();
  list.forEach((t) => pending.set(t.id, t));
  render();
  for (const [id, text] of errors) {  // a refetch keeps a refusal on screen
    const c = document.querySelector(`.approval[data-id="${CSS.escape(id)}"] .msg-err`);
    if (c) c.textContent = text;
  }
}

function done(t, by) {
  $('done').prepend(h('div', {class: 'card done ok', data: {id: t.id}},
    `${t.id} 已${by ? '由您' : '由他人'}复核通过，状态：${label(STATUS, t.status)}。`,
    h('a', {href: `/trades#${encodeURIComponent(t.id)}`, text: '查看交易'})));
}

async function approve(cardEl) {
  const id = cardEl.dataset.id, err = cardEl.querySelector('.msg-err'), btn = cardEl.querySelector('button.approve');
  err.textContent = '';
  btn.disabled = true;
  approving.add(id);
  try {
    const t = await api(`/api/trades/${encodeURIComponent(id)}/approve`, {method: 'POST', body: '{}'});
    pending.delete(id);
    render();
    done(t, true);
  } catch (ex) {
    approving.delete(id);
    err.textContent = `未通过：${ex.message}`;
    btn.disabled = false;
  }
}

function onTrade(kind, t) {
  if (!t || !t.id) return;
  if (t.status === PENDING) pending.set(t.id, t);
  else if (pending.delete(t.id)) { if (!approving.has(t.id)) done(t, false); }
  else return;
  render();
}

(async () => {
  me = await whoami();
  if (me.role !== 'risk') {
    denied($('page'), `第二复核仅限风控人员（当前角色：${label(ROLE, me.role)}）`);
    $('count').textContent = '';
    return;
  }
  $('queue').addEventListener('click', (e) => {
    const c = e.target.closest('.approval');
    if (c && e.target.closest('button.approve')) approve(c);
  });
  try { await load(); } catch (ex) { denied($('queue'), `加载失败：${ex.message}`); return; }
  live(['trade'], onTrade, () => load().catch(() => {}));
})();
