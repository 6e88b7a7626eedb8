/* Shared by the console pages after common.js (trades, book, approvals, onboarding, kyc; apply uses only the DOM helpers): DOM building that never parses markup (what the
   server sends only ever reaches the page as text nodes or attribute values), number formats, labels, the
   signed-in user, and live updates over /api/events with a periodic refetch as the fallback. */
const SVG_NS = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

function _fill(node, props, children) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'text') node.textContent = String(v);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = String(dv);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));  // a string becomes a text node, never markup
  }
  return node;
}
/** An HTML element: h('td', {class: 'num', text: '12'}) or h('tr', {}, h('td', {}, 'x'), ...). */
const h = (tag, props = {}, ...children) => _fill(document.createElement(tag), props, children);
/** An SVG element; presentation attributes (fill, x, width) are attributes, allowed under the CSP. */
const svg = (tag, props = {}, ...children) => _fill(document.createElementNS(SVG_NS, tag), props, children);
const clear = (node) => { node.replaceChildren(); return node; };
/** Replace a node's children (null and false skipped, strings as text). */
const fill = (node, ...children) => _fill(clear(node), {}, children);

const NF0 = new Intl.NumberFormat('zh-CN', {maximumFractionDigits: 0});
const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
/** CNY amounts as whole yuan with separators; '-' when absent. */
const money = (x) => (isNum(x) ? NF0.format(x) : '-');
const fixed = (x, d = 2) => (isNum(x) ? x.toFixed(d) : '-');
/** An amount in 万 (10,000 CNY), for chart labels. */
const wan = (x, d = 1) => (isNum(x) ? `${(x / 1e4).toFixed(d)}万` : '-');
/** A timestamp in Beijing time (the desk's and the exchange's), whatever the browser's zone. */
const when = (iso) => (iso ? new Date(iso).toLocaleString('zh-CN', {hour12: false, timeZone: 'Asia/Shanghai'}) : '-');
/** A value as short text: numbers to at most 4 decimals, booleans as 是/否. */
const short = (v) => (isNum(v) ? String(Number(v.toFixed(4))) : typeof v === 'boolean' ? (v ? '是' : '否') : String(v));

const STATUS = {pending_second_approval: '待第二复核', live: '存续', knocked_out: '已敲出', matured: '已到期',
  closed: '已平仓', cancelled: '已撤销', new: '新建'};
const EVENT = {knocked_out: '敲出', knocked_in: '敲入', matured: '到期', coupon: '派息', unwound: '平仓',
  partial_unwind: '部分平仓', closed: '平仓', initial_price_fixed: '期初价格确定'};
const STRUCTURE = {vanilla: '香草', spread: '价差', digital: '二元', barrier: '障碍', sharkfin: '鲨鱼鳍',
  double_sharkfin: '双鲨', snowball: '雪球', phoenix: '凤凰', asian: '亚式', airbag: '安全气囊'};
const OPTION = {call: '看涨', put: '看跌'};
const EXECUTION = {market: '市价', limit: '限价', pov: 'POV', twap: 'TWAP', close: '收盘价', vwap: 'VWAP'};
const TERM = {side: '方向', quote: '报价方式', tenor: '期限', initial_price: '期初价格', calendar: '交易日历',
  strike_pct: '行权价 %', upper_strike_pct: '上行权价 %', barrier_pct: '障碍 %', ko_pct: '敲出水平 %', ki_pct: '敲入水平 %',
  coupon_pct: '票息 %（年化）', participation_pct: '参与率 %', rebate_pct: '补偿 %', lockup_months: '锁定期（月）',
  ko_stepdown_pct: '敲出逐月下调 %', ko_observation: '敲出观察', ki_observation: '敲入观察', knocked_in: '已敲入',
  early_observations: '提前观察次数', trade_date: '交易日', start_date: '起始日', maturity_date: '到期日',
  ko_observation_dates: '敲出观察日', coupon_observation_dates: '派息观察日', averaging_dates: '均价观察日',
  client_buys: '客户买入', client_sells: '客户卖出', coupon: '票息', premium: '期权费', monthly: '每月', daily: '每日',
  at_maturity: '到期', none: '无'};
const ROLE = {trader: '交易员', risk: '风控', compliance: '合规', sales: '销售', admin: '管理员'};
const label = (table, key) => (key == null ? '-' : table[key] || String(key));
const structureOf = (p) => `${label(STRUCTURE, p && p.structure)}${(p && OPTION[p.option_type]) || ''}`;
const statusBadge = (status) => h('span', {class: `badge status-${status}`, text: label(STATUS, status)});

/** The execution instruction (建仓指令) in a line: "限价 10", "POV 25% 限价 6000", "TWAP 09:30–10:30". */
function executionText(e) {
  if (!e || !e.type) return '-';
  const parts = [label(EXECUTION, e.type)];
  if (e.pov_pct != null) parts[0] += ` ${e.pov_pct}%`;
  if (e.limit_price != null) parts.push(`限价 ${e.limit_price}`);
  if (e.start || e.end) parts.push(`${e.start || ''}–${e.end || ''}`);
  return parts.join(' ');
}

/** The signed-in user (GET /api/me) shown in the header; the logout button wired. */
async function whoami() {
  const me = await api('/api/me');
  $('who').textContent = `${me.user}（${label(ROLE, me.role)}）`;
  const surv = $('survlink');  // market surveillance is compliance's alone (the API refuses every other role)
  if (surv) surv.hidden = me.role !== 'compliance';
  const out = $('logout');
  if (out) out.addEventListener('click', async () => { await fetch('/api/logout', {method: 'POST'}); location.href = '/login'; });
  return me;
}

/** A card saying this page is not for the user's role (the API refuses it anyway). */
function denied(container, text) {
  fill(container, h('div', {class: 'card empty denied', id: 'denied', text}));
}

/**
 * Live updates: `onEvent(kind, data)` for each SSE event of `kinds`; `refetch()` when the stream (re)connects and
 * every `periodMs` whatever the stream does, so a missed event or an event kind the server does not send yet
 * only delays the page. `#live` tells the user which of the two is working.
 */
function live(kinds, onEvent, refetch, periodMs = 30000) {
  const status = (text) => { const el = $('live'); if (el) el.textContent = text; };
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => { status('实时更新已连接'); refetch(); });
  es.addEventListener('error', () => status(`实时更新断开，重连中（每 ${periodMs / 1000} 秒自动刷新）`));
  for (const kind of kinds) {
    es.addEventListener(kind, (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (ex) { return; }
      onEvent(kind, data);
    });
  }
  setInterval(refetch, periodMs);
  return es;
}

// ---- KYC onboarding (onboarding.html, kyc.html) -------------------------------------------------------
const KYC_STATE = {invited: '待客户填写', sales_review: '销售审核', compliance_review: '合规审核', risk_review: '风控审核',
  signing: '待客户签署', approved: '已准入', returned: '已退回客户', rejected: '已拒绝', suspended: '已暂停'};
const KYC_ROLE = {...ROLE, client: '客户'};
const DOC_KIND = {business_licence: '营业执照', authorisation_letter: '授权委托书', id_copy: '法定代表人身份证件'};
const INVESTOR = {professional: '专业投资者', ordinary: '普通投资者'};
const kycBadge = (state) => h('span', {class: `badge kyc-${state}`, text: label(KYC_STATE, state)});
/** A duration in seconds as Chinese text: "刚刚", "12 分钟", "3 小时 5 分钟", "2 天 4 小时". */
function waited(s) {
  if (!isNum(s) || s < 60) return isNum(s) ? '刚刚' : '-';
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} 天${hr ? ` ${hr} 小时` : ''}`;
  if (hr) return `${hr} 小时${m ? ` ${m} 分钟` : ''}`;
  return `${m} 分钟`;
}
/** Bytes as text: "812 B", "14.2 KB", "1.3 MB". */
const bytes = (n) => (!isNum(n) ? '-' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
