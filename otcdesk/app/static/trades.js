// Trades (trades.html), for trader, risk and compliance: the list newest first (GET /api/trades?status=), a
// trade's detail (GET /api/trades/{id}: terms, approvals, lifecycle steps, events, the confirmation PDF), live
// over /api/events (kind `trade`, a Trade document) with a periodic refetch. The selected trade is the URL's hash.
const READERS = ['trader', 'risk', 'compliance'];
const PAGE = 500;  // GET /api/trades answers at most this many, newest first
const trades = new Map();  // id → Trade, in the current status filter
let detail = null;  // the Trade shown in the detail card
let me = null;

const selectedId = () => decodeURIComponent(location.hash.slice(1));
const statusFilter = () => $('status').value;
const newestFirst = (a, b) => (b.booked_at || '').localeCompare(a.booked_at || '') || b.id.localeCompare(a.id);

function row(t) {
  const p = t.product || {};
  return h('tr', {class: `trade${t.id === selectedId() ? ' selected' : ''}`, data: {id: t.id, status: t.status}, tabindex: 0},
    h('td', {class: 'mono', text: t.id}), h('td', {}, statusBadge(t.status)),
    h('td', {text: t.institution || '-'}), h('td', {text: t.client || '-'}),
    h('td', {text: `${t.underlying || p.underlying || '-'} ${p.underlying_name || ''}`.trim()}),
    h('td', {text: structureOf(p)}), h('td', {class: 'num', text: money(t.notional)}),
    h('td', {class: 'num', text: fixed(t.price_pct, 3)}), h('td', {class: 'num', text: money(t.premium_cny)}),
    h('td', {text: t.booked_by || '-'}), h('td', {text: when(t.booked_at)}));
}

function renderList() {
  const list = [...trades.values()].sort(newestFirst);
  fill(document.querySelector('#trades tbody'), ...list.map(row));
  $('trades-empty').hidden = list.length > 0;
  $('count').textContent = `${statusFilter() ? label(STATUS, statusFilter()) : '全部'} ${list.length} 笔` +
    (list.length >= PAGE ? `（显示最新 ${PAGE} 笔）` : '');
}

// ---- detail ------------------------------------------------------------------------------------------
const PRODUCT_SKIP = new Set(['structure', 'option_type', 'underlying', 'underlying_name', 'notional']);

/** A product's terms as rows: scalars as they are, a list of dates as its count and first/last. */
function productRows(p) {
  return Object.entries(p || {}).filter(([k]) => !PRODUCT_SKIP.has(k)).map(([k, v]) => {
    let text;
    if (Array.isArray(v)) text = v.length && typeof v[0] !== 'object' ? `${v.length} 个：${v[0]} … ${v[v.length - 1]}` : `${v.length} 项`;
    else if (v && typeof v === 'object') text = JSON.stringify(v);
    else text = typeof v === 'string' && TERM[v] ? TERM[v] : short(v);
    return h('tr', {data: {term: k}}, h('th', {title: k, text: TERM[k] || k}), h('td', {text}));
  });
}

function table(cls, head, rows, empty) {
  if (!rows.length) return h('p', {class: `meta ${cls}-empty`, text: empty});
  return h('table', {class: cls}, h('thead', {}, h('tr', {}, head.map((x) => h('th', {text: x})))), h('tbody', {}, rows));
}

const detailText = (d) => Object.entries(d || {}).filter(([, v]) => v == null || typeof v !== 'object')
  .map(([k, v]) => `${k}=${v == null ? '-' : short(v)}`).join(' ');

function confirmationBlock(t) {
  const ready = t.confirmation || ['live', 'knocked_out', 'matured', 'closed'].includes(t.status);
  if (!ready) return h('p', {class: 'meta', id: 'confirmation-none', text: '第二复核通过后生成交易确认书'});
  const href = `/api/trades/${encodeURIComponent(t.id)}/confirmation.pdf`;
  return h('p', {}, h('a', {id: 'confirmation', class: 'button', href, download: `${t.id}-交易确认书.pdf`, text: '下载交易确认书（PDF）'}),
    t.confirmation ? h('span', {class: 'meta hash', text: ` SHA-256 ${t.confirmation.sha256} · ${when(t.confirmation.confirmed_at)}`}) : null);
}

function renderDetail(t) {
  const card = $('detail');
  detail = t;
  card.hidden = false;
  const p = t.product || {};
  const facts = [
    ['机构', t.institution], ['群', t.group], ['客户', t.client], ['产品户', t.account], ['报价编号', t.quote_id],
    ['标的', `${t.underlying || p.underlying || ''} ${p.underlying_name || ''}`], ['结构', structureOf(p)],
    ['名义本金', money(t.notional) + (isNum(t.original_notional) && t.original_notional !== t.notional ? `（原 ${money(t.original_notional)}）` : '')],
    ['价格 %', fixed(t.price_pct, 4)], ['权利金', money(t.premium_cny)], ['建仓指令', executionText(t.execution)],
    ['期初价格', t.initial_price_pending ? '待定（按收盘价/VWAP 确定）' : (p.initial_price ?? '-')],
    ['簿记', `${t.booked_by || '-'} · ${when(t.booked_at)}`]];
  fill(card,
    h('h3', {}, statusBadge(t.status), h('span', {class: 'mono', id: 'detail-id', text: t.id})),
    t.status === 'pending_second_approval'
      ? h('p', {class: 'meta expiring'}, '名义本金超过四眼阈值：等待风控第二复核，客户尚未收到成交确认。', h('a', {href: '/approvals', text: '前往第二复核'}))
      : null,
    h('div', {class: 'cols'},
      h('div', {}, h('h4', {text: '交易要素'}), h('table', {class: 'facts'}, h('tbody', {},
        facts.map(([k, v]) => h('tr', {}, h('th', {text: k}), h('td', {text: v == null || v === '' ? '-' : String(v)})))))),
      h('div', {}, h('h4', {text: '产品条款（簿记时锁定）'}), h('table', {class: 'facts product'}, h('tbody', {}, productRows(p))))),
    h('h4', {text: '审批'}),
    table('approvals', ['步骤', '人员', '角色', '时间'], (t.approvals || []).map((a) =>
      h('tr', {}, h('td', {text: a.step === 'approve_second' ? '第二复核' : a.step === 'book' ? '簿记' : (a.step || '-')}),
        h('td', {text: a.user}), h('td', {text: label(ROLE, a.role)}), h('td', {text: when(a.at)}))), '尚无审批'),
    h('h4', {text: '状态流转'}),
    table('transitions', ['触发', '从', '到', '人员', '时间', '说明'], (t.transitions || []).map((s) =>
      h('tr', {}, h('td', {text: s.trigger}), h('td', {text: label(STATUS, s.source)}), h('td', {text: label(STATUS, s.dest)}),
        h('td', {text: `${s.by || '-'}${s.role ? `（${label(ROLE, s.role)}）` : ''}`}), h('td', {text: when(s.at)}),
        h('td', {class: 'meta', text: detailText(s.detail)}))), '尚无状态流转记录'),
    h('h4', {text: '生命周期事件'}),
    table('events', ['事件', '日期', '现金流', '说明'], (t.events || []).map((e) =>
      h('tr', {class: 'event', data: {type: e.type}}, h('td', {text: label(EVENT, e.type)}), h('td', {text: e.date}),
        h('td', {class: 'num', text: money(e.cash_cny)}), h('td', {class: 'meta', text: detailText(e.detail)}))), '尚无事件（敲出、敲入、派息、到期）'),
    h('h4', {text: '交易确认书'}), confirmationBlock(t),
    h('div', {class: 'err', id: 'detail-err'}));
}

async function showDetail() {
  const id = selectedId();
  document.querySelectorAll('#trades tr.trade').forEach((tr) => tr.classList.toggle('selected', tr.dataset.id === id));
  if (!id) { $('detail').hidden = true; detail = null; return; }
  try {
    renderDetail(await api(`/api/trades/${encodeURIComponent(id)}`));
  } catch (ex) {
    fill($('detail'), h('p', {class: 'err', text: `${id}：${ex.message}`}));
    $('detail').hidden = false;
  }
}

async function load() {
  const status = statusFilter();
  const list = await api(`/api/trades?limit=${PAGE}${status ? `&status=${encodeURIComponent(status)}` : ''}`);
  trades.clear();
  list.forEach((t) => trades.set(t.id, t));
  renderList();
  if (selectedId()) await showDetail();
}

function onTrade(kind, t) {
  if (!t || !t.id) return;
  if (!statusFilter() || t.status === statusFilter()) trades.set(t.id, t); else trades.delete(t.id);
  renderList();
  const tr = document.querySelector(`#trades tr.trade[data-id="${CSS.escape(t.id)}"]`);
  if (tr) tr.classList.add('fresh');
  if (detail && detail.id === t.id) renderDetail(t);
}

(async () => {
  me = await whoami();
  if (!READERS.includes(me.role)) { denied($('page'), `交易页面仅限交易员、风控与合规（当前角色：${label(ROLE, me.role)}）`); return; }
  document.querySelector('#trades tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr.trade');
    if (tr) location.hash = encodeURIComponent(tr.dataset.id);
  });
  document.querySelector('#trades tbody').addEventListener('keydown', (e) => {
    const tr = e.target.closest('tr.trade');
    if (tr && e.key === 'Enter') location.hash = encodeURIComponent(tr.dataset.id);
  });
  window.addEventListener('hashchange', showDetail);
  $('status').addEventListener('change', () => load().catch(showError));
  try { await load(); } catch (ex) { showError(ex); return; }
  live(['trade'], onTrade, () => load().catch(showError));
})();

function showError(ex) {
  $('count').textContent = `加载失败：${ex.message}`;
}
