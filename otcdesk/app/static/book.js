// The risk book (book.html), for trader and risk: GET /api/book (the latest risk snapshot) as the exposure table
// by underlying with its totals, the limits with breaches highlighted, a spot × vol scenario heat map and a
// PV-vs-spot ladder for the whole book or one underlying. Live over /api/events (kind `book`: a new snapshot's
// summary, then the page refetches the book) with a periodic refetch; risk users can revalue now.
const READERS = ['trader', 'risk'];
const KEYS = ['pv_cny', 'delta_cny', 'gamma_cny', 'vega_cny', 'theta_cny'];
const MEASURE = {delta_cny: 'Delta（1%）', vega_cny: 'Vega（1 vol）', gamma_cny: 'Gamma（1%）', pv_cny: 'PV', theta_cny: 'Theta'};
let book = null;
let me = null;

/** The latest book, or null before the first snapshot (404); other failures throw. */
async function fetchBook() {
  const r = await fetch('/api/book');
  if (r.status === 401) { location.href = '/login'; throw new Error('login'); }
  const body = await r.json();
  if (r.status === 404) return {missing: body};
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function exposureCells(e) {
  return KEYS.map((k) => h('td', {class: 'num', data: {k, value: isNum(e[k]) ? e[k] : ''}, text: money(e[k])}));
}

function renderExposure(b) {
  fill(document.querySelector('#exposure tbody'), ...(b.by_underlying || []).map((e) =>
    h('tr', {class: 'exposure', data: {underlying: e.underlying}, title: '点击查看该标的的情景'},
      h('td', {text: e.underlying}), h('td', {class: 'num', text: e.trades ?? '-'}), exposureCells(e))));
  const trades = (b.by_underlying || []).reduce((n, e) => n + (e.trades || 0), 0);
  fill(document.querySelector('#exposure tfoot'), h('tr', {id: 'totals', class: 'totals'},
    h('th', {text: '合计'}), h('td', {class: 'num', text: trades}), exposureCells(b.totals || {})));
}

function renderLimits(b) {
  const use = (l) => (isNum(l.utilisation) ? l.utilisation : (isNum(l.value) && l.limit ? Math.abs(l.value) / l.limit : null));
  const limits = [...(b.limits || [])]  // breaches first, then the most used
    .sort((a, c) => Number(!!c.breached) - Number(!!a.breached) || (use(c) ?? -1) - (use(a) ?? -1));
  fill(document.querySelector('#limits tbody'), ...limits.map((l) => {
    return h('tr', {class: `limit${l.breached ? ' breached' : ''}`, data: {underlying: l.underlying, measure: l.measure}},
      h('td', {text: l.underlying}), h('td', {text: label(MEASURE, l.measure)}), h('td', {class: 'num', text: money(l.value)}),
      h('td', {class: 'num', text: money(l.limit)}),
      h('td', {class: 'num', text: isNum(use(l)) ? `${(use(l) * 100).toFixed(1)}%` : '-'}),
      h('td', {}, l.breached ? h('span', {class: 'badge breach', text: '超限'}) : h('span', {class: 'ok', text: '正常'})));
  }));
}

function renderFacts(b) {
  const breaches = (b.limits || []).filter((l) => l.breached).length;
  const market = b.market || {};
  fill($('facts'),
    h('span', {id: 'snapshot-id', data: {id: b.snapshot_id}, text: `快照 #${b.snapshot_id}`}), ' · ', h('span', {id: 'live-trades', text: `存续交易 ${b.live_trades} 笔`}),
    b.valuation_date ? ` · 估值日 ${b.valuation_date}` : '',
    market.source ? ` · 行情：${market.source}${market.as_of ? `（${when(market.as_of)}）` : ''}` : '',
    isNum(b.elapsed_s) ? ` · 重估耗时 ${b.elapsed_s.toFixed(2)} 秒` : '',
    ' · ', h('span', {class: breaches ? 'expiring' : 'ok', id: 'breaches', text: breaches ? `超限 ${breaches} 项` : '限额内'}));
  $('asof').textContent = `截至 ${when(b.as_of)}`;
  const unvalued = b.unvalued || [];
  fill($('unvalued'), unvalued.length ? h('details', {class: 'meta'},
    h('summary', {class: 'err', text: `${unvalued.length} 笔交易未能估值，未计入上表`}),
    h('ul', {}, unvalued.map((u) => h('li', {text: `${u.trade_id || u.id || '?'}：${u.reason || JSON.stringify(u)}`})))) : '');
}

// ---- scenarios -------------------------------------------------------------------------------------------
/** The index of the zero vol shift (the vol-unchanged column of the grid). */
const zeroVol = (vols) => vols.reduce((best, v, j) => (Math.abs(v) < Math.abs(vols[best]) ? j : best), 0);

function scopes(b) {
  const out = [{key: '', name: '全账本'}];
  for (const e of b.by_underlying || []) {
    const ladder = (b.ladders || []).find((l) => l.underlying === e.underlying);
    if (e.scenario_pnl_cny || ladder) out.push({key: e.underlying, name: e.underlying});
  }
  return out;
}

function renderScope(b) {
  const sel = $('scope'), keep = sel.value;
  const options = scopes(b);
  fill(sel, ...options.map((o) => h('option', {value: o.key, text: o.name})));
  sel.value = options.some((o) => o.key === keep) ? keep : '';
  renderCharts(b);
}

function renderCharts(b) {
  const sc = b.scenario || {}, spots = sc.spot_shifts_pct || [], vols = sc.vol_shifts || [];
  const u = $('scope').value, entry = (b.by_underlying || []).find((e) => e.underlying === u);
  const own = entry && entry.scenario_pnl_cny;  // that underlying moving alone, else the whole book
  const grid = own ? entry.scenario_pnl_cny : sc.pnl_cny || [];
  heatmap($('heatmap'), spots, vols, grid, (text) => { $('heat-readout').textContent = text; });
  $('heat-readout').textContent = `${own ? u : '全账本'}：${spots.length} × ${vols.length} 个情景；将鼠标移到格子上查看数值`;
  const j0 = zeroVol(vols);
  const ladder = entry && (b.ladders || []).find((l) => l.underlying === u);
  if (ladder && ladder.spots && ladder.spots.every(isNum)) {
    ladderChart($('ladder'), ladder.spots, ladder.pv_cny, {xLabel: `${u} 现货`, xFormat: (x) => x.toFixed(0),
      markerX: ladder.spot, markerLabel: `当前 ${ladder.spot}`});
  } else {
    const pv = entry ? entry.pv_cny : (b.totals || {}).pv_cny;
    const xs = ladder ? ladder.spot_shifts_pct : spots;
    const ys = ladder ? ladder.pv_cny : spots.map((_, i) => (isNum(pv) && isNum((grid[i] || [])[j0]) ? pv + grid[i][j0] : null));
    ladderChart($('ladder'), xs, ys, {xLabel: `${entry ? u : '全部标的'} 现货变动`, xFormat: signedPct, markerX: 0});
  }
}

// ---- loading ---------------------------------------------------------------------------------------------
async function load() {
  let b;
  try { b = await fetchBook(); } catch (ex) { $('book-err').textContent = `加载失败：${ex.message}`; return; }
  $('book-err').textContent = '';
  if (b.missing) {
    book = null;
    $('book').hidden = true;
    const empty = $('book-empty');
    empty.hidden = false;
    empty.textContent = `尚无风险快照（存续交易 ${b.missing.detail?.live_trades ?? b.missing.live_trades ?? '?'} 笔）：` +
      (me.role === 'risk' ? '点击“立即重估”生成第一个快照。' : '等待定时重估或风控发起重估。');
    return;
  }
  book = b;
  $('book-empty').hidden = true;
  $('book').hidden = false;
  renderFacts(b);
  renderExposure(b);
  renderLimits(b);
  renderScope(b);
}

async function refreshNow() {
  const btn = $('refresh');
  btn.disabled = true;
  btn.textContent = '重估中…';
  try {
    await api('/api/risk/refresh', {method: 'POST', body: '{}'});
    await load();
  } catch (ex) {
    $('book-err').textContent = `重估失败：${ex.message}`;
  } finally {
    btn.disabled = false;
    btn.textContent = '立即重估';
  }
}

(async () => {
  me = await whoami();
  if (!READERS.includes(me.role)) { denied($('page'), `风险账本仅限交易员与风控（当前角色：${label(ROLE, me.role)}）`); return; }
  $('refresh').hidden = me.role !== 'risk';
  $('refresh').addEventListener('click', refreshNow);
  $('scope').addEventListener('change', () => book && renderCharts(book));
  document.querySelector('#exposure tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr.exposure');
    if (!tr || !book) return;
    $('scope').value = tr.dataset.underlying;
    if ($('scope').value === tr.dataset.underlying) renderCharts(book);
  });
  await load();
  live(['book'], () => load(), load, 60000);
})();
