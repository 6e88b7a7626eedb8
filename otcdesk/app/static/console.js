// The trader console (console.html): the review queue, live over /api/events; pending items soonest-expiring
// first, every page of them loaded (GET /api/review pages with ?limit=&before= and a Link rel="next").
// esc and api come from common.js.
const STRUCT = {vanilla:'香草', spread:'价差', digital:'二元', barrier:'障碍', sharkfin:'鲨鱼鳍', double_sharkfin:'双鲨',
  snowball:'雪球', phoenix:'凤凰', asian:'亚式', airbag:'安全气囊'};
const TYPE = {call:'看涨', put:'看跌'};
const KIND = {quote:'报价', clarification:'澄清问题', onboarding:'准入提示', order:'下单指令', unwind:'平仓指令',
  holdings:'持仓查询', order_status:'订单状态', notice:'存续事件通知', knowledge:'知识问答'};
const EXEC = {market:'市价', limit:'限价', pov:'POV', twap:'TWAP', close:'收盘价', vwap:'VWAP'};
const items = new Map();
const fmt = (x, d=2) => (typeof x === 'number' ? x.toFixed(d) : '-');
function terms(r) {
  const keys = ['strike_pct','upper_strike_pct','strike_level','barrier_pct','ko_pct','ki_pct','coupon_pct','participation_pct','notional'];
  return keys.filter((k) => r[k] != null).map((k) => `${k}=${r[k]}`).join(' ');
}
function linesTable(it) {
  if (!it.lines || !it.lines.length) {
    if (!it.requests || !it.requests.length) return '';
    return '<table><tr><th>标的</th><th>结构</th><th>期限</th><th>条款</th><th>缺少</th></tr>' + it.requests.map((r) =>
      `<tr><td>${esc(r.underlying)} ${esc(r.underlying_name)}</td><td>${esc(STRUCT[r.structure]||r.structure)}${esc(TYPE[r.option_type]||'')}</td>
       <td>${esc(r.tenor)}</td><td>${esc(terms(r))}</td><td class="err">${esc((r.missing||[]).join(', '))}</td></tr>`).join('') + '</table>';
  }
  return '<table class="lines"><tr><th>标的</th><th>结构</th><th>期限</th><th>条款</th><th>公允</th><th>点差</th><th>报价</th><th>Delta</th><th>Vega</th><th>引擎</th><th>市场</th><th>假设</th></tr>' +
    it.lines.map((l) => { const r = l.request || {}; const g = l.greeks || {}; const m = l.market || {};
      const [fair, margin, quote] = l.error ? [priced(l.fair_price_pct, l.fair_solved), '-', `<span class="err">${esc(l.error)}</span>`]
        : [priced(l.fair_price_pct, l.fair_solved), marginCell(l), priced(l.price_pct, l.solved)];
      return `<tr><td>${esc(r.underlying)} ${esc(r.underlying_name)}</td><td>${esc(STRUCT[r.structure]||r.structure)}${esc(TYPE[r.option_type]||'')}</td>
      <td>${esc(r.tenor)}</td><td>${esc(terms(r))}</td><td class="num fair">${fair}</td><td class="num margin">${margin}</td>
      <td class="num quote">${quote}</td><td class="num">${fmt(g.delta,3)}</td>
      <td class="num">${fmt(g.vega,4)}</td><td>${esc(l.engine||'')}</td><td class="meta">S=${esc(m.spot)} r=${esc(m.rate)} ${l.vol_note ? `<br><span class="vol-used">${esc(l.vol_note)}</span>` : `σ=${esc(m.vol)}`}<br>${esc(m.source||'')}</td>
      <td class="meta">${esc((r.assumed||[]).join(', '))}</td></tr>`; }).join('') + '</table>';
}
// The order or unwind terms of the item (CONTRACTS `order`), with what the trader must know before approving.
function orderTerms(it) {
  const o = it.order; if (!o) return '';
  const d = it.detail || {}, x = o.execution || {};
  const exec = x.type ? [EXEC[x.type] || x.type, x.limit_price != null ? `限价 ${x.limit_price}` : '',
    x.pov_pct != null ? `${x.pov_pct}%` : '', x.start ? `${x.start}-${x.end || ''}` : ''].filter(Boolean).join(' ') : '未给出';
  const ref = o.trade_id ? `交易 ${o.trade_id}` : `报价 ${o.quote_id || '未找到'}`;
  const uq = d.unwind_quote && d.unwind_quote.price_pct != null
    ? ` · 平仓价 ${fmt(d.unwind_quote.price_pct, 3)}%（公允 ${fmt(d.unwind_quote.fair_price_pct, 3)}%，点差 ${fmt(d.unwind_quote.margin_pct, 3)}%）` : '';
  const warn = [d.stale ? '报价已过期：不能按原价成交，只能重新定价' : '', (d.missing || []).length ? `缺少：${d.missing.join(', ')}` : '',
    d.refused ? '已拒绝（回复说明原因）' : ''].filter(Boolean);
  return `<p class="order-terms">${esc(ref)} · 名义本金 ${o.notional != null ? esc(fmt(o.notional / 1e4, 0)) + ' 万元' : '未给出'} · 建仓指令 ${esc(exec)}` +
    `${o.account ? ' · 产品户 ' + esc(o.account) : ''}${esc(uq)}</p>` + warn.map((w) => `<p class="err">${esc(w)}</p>`).join('');
}
// A knowledge item's evidence (CONTRACTS Part 2 "Review items"): the cited passages, or a warning that none was found.
function knowledgeCites(it) {
  if (it.kind !== 'knowledge') return '';
  const cites = (it.detail || {}).citations || [];
  if (!cites.length) return '<p class="err kb-none">知识库中没有依据：草稿只说明将由交易台跟进，请勿自行编造答案</p>';
  return '<ol class="kb-cites">' + cites.map((c) => `<li><b>${esc(c.source)}</b>${c.heading ? ' · ' + esc(c.heading) : ''}` +
    `<p class="meta">${esc((c.text || '').slice(0, 240))}</p></li>`).join('') + '</ol>';
}
// The pre-trade check of each priced line against the desk's limits (trading.risk.RiskService.pretrade).
function pretradeNotes(it) {
  return (it.lines || []).filter((l) => l.pretrade).map((l) => {
    const p = l.pretrade;
    if (p.error) return `<p class="pretrade err">事前风控未完成：${esc(p.error)}</p>`;
    return `<p class="pretrade ${p.breached ? 'err breach' : 'ok'}">事前风控${p.breached ? '（超限）' : ''}：${esc(p.text)}` +
      `${p.notional_assumed ? '（按名义本金 1000 万元估算）' : ''}</p>`;
  }).join('');
}
// A price column: the solved coupon or participation when there is one, else the premium in % of notional.
const SOLVED = {coupon_pct: '票息', participation_pct: '参与率'};
function priced(pct, solved) {
  const k = Object.keys(solved || {}).find((f) => SOLVED[f]);
  if (k) return `${SOLVED[k]} ${fmt(solved[k])}%`;
  return typeof pct === 'number' ? `${fmt(pct, 3)}%` : '-';
}
// The desk's margin (% of notional, in CNY when a notional is given) and the bucket of the table it came from.
function marginCell(l) {
  if (typeof l.margin_pct !== 'number') return '-';
  const b = l.margin || {};
  const cny = typeof l.margin_cny === 'number' ? `<br><span class="meta">${fmt(l.margin_cny / 1e4)} 万元</span>` : '';
  return `${fmt(l.margin_pct, 3)}%${cny}<br><span class="meta">${esc(b.structure === '*' ? '通用' : (STRUCT[b.structure] || b.structure))} ≤${esc(b.max_tenor_days)}天</span>`;
}
function longNote(it) {
  if (!it.truncated_for_parsing) return '';
  return `<p class="meta expiring">消息过长（共 ${it.text.length} 字）：只解析了前 ${it.parsed_chars} 字，请核对全文。</p>
    <details><summary class="meta">全文</summary><p>${esc(it.text)}</p></details>`;
}
function render() {
  const q = document.getElementById('queue');
  const pending = [...items.values()].filter((i) => i.status === 'pending')
    .sort((a, b) => new Date(a.expires_at) - new Date(b.expires_at) || a.id.localeCompare(b.id));
  document.getElementById('count').textContent = `待复核 ${pending.length} 条`;
  const expired = [...items.values()].filter((i) => i.status === 'expired' && !i.superseded_by && i.kind === 'quote');
  const exHtml = expired.length ? '<h3 class="meta">已过期，需重新定价</h3>' + expired.map((it) => `
  <div class="card item expired" data-id="${esc(it.id)}"><h3>${esc(it.id)} · ${esc(it.group)} · ${esc(it.sender)}</h3>
    <p>客户原话：${esc(it.text)}</p><div class="actions"><button class="plain reprice">按最新行情重新定价</button></div>
    <div class="err msg-err"></div></div>`).join('') : '';
  if (!pending.length) { q.innerHTML = '<div class="card empty" id="empty">没有待复核的回复</div>' + exHtml; return; }
  q.innerHTML = exHtml + pending.map((it) => `
  <div class="card item" data-id="${esc(it.id)}">
    <h3><span class="badge ${esc(it.kind)}">${esc(KIND[it.kind]||it.kind)}</span>${esc(it.id)} · ${esc(it.group)} · ${esc(it.sender)}</h3>
    <div class="meta">收到 ${new Date(it.created_at).toLocaleTimeString()} · 过期 <span class="ttl" data-exp="${esc(it.expires_at)}"></span></div>
    <p>客户原话：${esc(it.truncated_for_parsing ? it.text.slice(0, it.parsed_chars) + '…' : it.text)}</p>${longNote(it)}${orderTerms(it)}${knowledgeCites(it)}${linesTable(it)}${pretradeNotes(it)}
    <textarea class="reply">${esc(it.draft_reply)}</textarea>
    <div class="actions"><button class="approve">批准发送</button>
      <input class="reason" placeholder="拒绝原因"><button class="reject">拒绝</button></div>
    <div class="err msg-err"></div></div>`).join('');
  tick();
}
function tick() {
  document.querySelectorAll('.ttl').forEach((el) => {
    const s = Math.round((new Date(el.dataset.exp) - Date.now()) / 1000);
    el.textContent = s > 0 ? `${s} 秒后` : '已过期（需重新定价）'; el.className = 'ttl' + (s < 30 ? ' expiring' : '');
  });
}
document.getElementById('queue').addEventListener('click', async (e) => {
  const card = e.target.closest('.item'); if (!card) return;
  const id = card.dataset.id, err = card.querySelector('.msg-err');
  try {
    if (e.target.classList.contains('approve')) {
      const reply = card.querySelector('.reply').value, it = items.get(id);
      items.set(id, await api(`/api/review/${id}/approve`, {method: 'POST', body: JSON.stringify(reply !== it.draft_reply ? {reply} : {})}));
    } else if (e.target.classList.contains('reprice')) {
      const fresh = await api(`/api/review/${id}/reprice`, {method: 'POST', body: '{}'});
      items.set(fresh.id, fresh); items.get(id).superseded_by = fresh.id;
    } else if (e.target.classList.contains('reject')) {
      items.set(id, await api(`/api/review/${id}/reject`, {method: 'POST', body: JSON.stringify({reason: card.querySelector('.reason').value})}));
    } else return;
    render();
  } catch (ex) { err.textContent = ex.message; }
});
document.getElementById('logout').onclick = async () => { await fetch('/api/logout', {method: 'POST'}); location.href = '/login'; };
async function loadPages(url, all) {
  // Follows Link rel="next" to the last page when `all`, else stops after the first.
  while (url) {
    const r = await fetch(url);
    if (r.status === 401) { location.href = '/login'; throw new Error('login'); }
    const body = await r.json(); if (!r.ok) throw new Error(body.error || r.statusText);
    body.forEach((it) => items.set(it.id, it));
    const next = /<([^>]+)>;\s*rel="next"/.exec(r.headers.get('Link') || '');
    url = all && next ? next[1] : null;
  }
}
async function load() {
  await loadPages('/api/review?status=pending&limit=200', true);
  await loadPages('/api/review?status=expired&limit=200', false);  // the newest, to reprice
  render();
}
(async () => {
  const me = await api('/api/me');
  document.getElementById('who').textContent = `${me.user}（${me.role}）`;
  document.getElementById('simlink').hidden = !me.demo;
  document.getElementById('survlink').hidden = me.role !== 'compliance';
  try { await load(); } catch (ex) {
    document.getElementById('queue').innerHTML = `<div class="card empty">${esc(ex.message)}（复核队列仅限交易员）</div>`; return;
  }
  const es = new EventSource('/api/events');
  es.onopen = () => { document.getElementById('live').textContent = '实时更新已连接'; load(); };
  es.onerror = () => { document.getElementById('live').textContent = '实时更新断开，重连中…'; };
  es.addEventListener('review', (ev) => { const it = JSON.parse(ev.data); items.set(it.id, it); render(); });
  setInterval(tick, 1000);
})();
