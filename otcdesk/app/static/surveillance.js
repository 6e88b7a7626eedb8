// Market surveillance (surveillance.html), compliance only: the persisted alerts (GET /api/surveillance/alerts, filters
// type/status/account), a run of the detectors (POST /api/surveillance/run), an alert's evidence with its order
// timeline and its triage (GET /api/surveillance/alerts/{id}, POST …/triage with a note and the version read), and
// the actual-control groups (GET /api/surveillance/control-groups). The selected alert is the URL's hash.
const ALERT_TYPE = {spoofing: '幌骗', wash_trade: '对倒', control_group: '实际控制账户组'};
const ALERT_STATUS = {open: '待处理', investigating: '调查中', escalated: '已上报', dismissed: '已排除'};
const ACTION = {investigate: '开始调查', escalate: '上报', dismiss: '排除', reopen: '重新打开'};
const NEEDS_NOTE = new Set(['escalate', 'dismiss']);
const KEY = {id_number: '身份证号', mobile: '手机号', bank_account: '银行账户', device_id: '设备号', address: '地址', ip: 'IP'};
let detail = null;
let yAxis = 'price';

const selectedId = () => {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch (e) {  // a malformed #hash selects nothing rather than breaking the page
    return '';
  }
};
const alertBadge = (s) => h('span', {class: `badge alert-${s}`, text: label(ALERT_STATUS, s)});
const accountsText = (list, n = 4) => (list.length > n ? `${list.slice(0, n).join('、')} 等 ${list.length} 个` : list.join('、'));

function query() {
  const q = new URLSearchParams({limit: '500'});
  for (const k of ['type', 'status', 'account']) if ($(k).value.trim()) q.set(k, $(k).value.trim());
  return q.toString();
}

function row(a) {
  return h('tr', {class: `alert${a.id === selectedId() ? ' selected' : ''}`, tabindex: 0, data: {id: a.id, type: a.type, status: a.status}},
    h('td', {class: 'mono', text: a.id}), h('td', {text: label(ALERT_TYPE, a.type)}),
    h('td', {text: accountsText(a.accounts)}), h('td', {text: a.instrument || '-'}),
    h('td', {class: 'num'}, fixed(a.score, 3), svg('svg', {width: 40, height: 6, class: 'score'},
      svg('rect', {width: Math.round(40 * a.score), height: 6, class: 'score-fill', fill: '#0b63c5'}))),
    h('td', {}, alertBadge(a.status)), h('td', {class: 'num', text: a.orders}), h('td', {class: 'num', text: a.trades}),
    h('td', {text: when(a.first_seen_at)}), h('td', {text: when(a.last_seen_at)}));
}

function renderCounts(counts) {
  fill($('counts'), ...Object.keys(ALERT_TYPE).map((t) => {
    const by = counts[t] || {}, total = Object.values(by).reduce((x, y) => x + y, 0);
    return h('span', {class: 'count', data: {type: t}}, label(ALERT_TYPE, t), h('b', {text: total}),
      h('span', {class: 'meta', text: `待处理 ${by.open || 0} · 调查中 ${by.investigating || 0}`}));
  }));
}

async function loadList() {
  const found = await api(`/api/surveillance/alerts?${query()}`);
  fill(document.querySelector('#alerts tbody'), ...found.alerts.map(row));
  $('alerts-empty').hidden = found.alerts.length > 0;
  $('count').textContent = `符合条件 ${found.total} 条` + (found.total > found.alerts.length ? `（显示 ${found.alerts.length} 条）` : '');
  $('lastrun').textContent = found.last_run ? `最近一次运行发现于 ${when(found.last_run)}` : '尚未运行';
  renderCounts(found.counts);
}

async function loadGroups() {
  const {groups} = await api('/api/surveillance/control-groups');
  fill(document.querySelector('#groups tbody'), ...groups.map((g) => h('tr', {class: 'group', data: {id: g.id}},
    h('td', {}, h('a', {href: `#${encodeURIComponent(g.id)}`, text: g.accounts.join('、')})),
    h('td', {class: 'num', text: fixed(g.score, 3)}),
    h('td', {text: g.links.map((l) => `${label(KEY, l.key)} ${l.value}（${l.accounts.join('、')}）`).join('；')}),
    h('td', {class: 'meta', text: g.weak_links.map((l) => `${label(KEY, l.key)} ${l.value}`).join('；') || '-'}),
    h('td', {}, alertBadge(g.status)))));
  $('groups-empty').hidden = groups.length > 0;
}

function table(cls, head, rows, empty) {
  if (!rows.length) return h('p', {class: `meta ${cls}-empty`, text: empty});
  return h('table', {class: cls}, h('thead', {}, h('tr', {}, head.map((x) => h('th', {text: x})))), h('tbody', {}, rows));
}

function evidenceBlock(a) {
  const ev = a.evidence || {};
  if (a.type === 'spoofing') {
    return [h('p', {class: 'meta', text: `账户 ${ev.account} · 品种 ${ev.instrument} · 大单阈值 ${NF0.format(ev.large_threshold_qty)}` +
      `（中位数 ${NF0.format(ev.median_qty)}）· 撤单时限 ${ev.max_lifetime_ms} ms` +
      (ev.control_group ? ` · 所属实控组 ${ev.control_group.join('、')}` : '')}),
    table('evidence', ['委托号', '方向', '价格', '数量', '相对中位数', '下单', '撤单', '存续 (ms)', '期间反向成交'],
      (ev.orders || []).map((o) => h('tr', {class: 'evidence-order', data: {order: o.order_id}},
        h('td', {class: 'mono', text: o.order_id}), h('td', {text: label(SIDE, o.side)}), h('td', {class: 'num', text: fixed(o.price, 2)}),
        h('td', {class: 'num', text: NF0.format(o.qty)}), h('td', {class: 'num', text: `${o.size_vs_median}×`}),
        h('td', {text: when(o.placed)}), h('td', {text: when(o.cancelled)}), h('td', {class: 'num', text: o.lifetime_ms}),
        h('td', {text: (o.opposite_fills || []).map((f) => `${f.account_id} ${NF0.format(f.qty)}@${fixed(f.price, 2)}`).join('；') || '-'}))),
      '没有证据委托')];
  }
  if (a.type === 'wash_trade') {
    return [h('p', {class: 'meta', text: `品种 ${ev.instrument} · ${ev.trades} 笔（自成交 ${ev.self_trades}）· 数量 ${NF0.format(ev.wash_qty)}` +
      ` · 占该品种成交量 ${fixed(100 * ev.volume_share, 2)}% · ${when(ev.first)} – ${when(ev.last)}`}),
    linksTable(ev.links || []),
    table('evidence', ['成交号', '时间', '价格', '数量', '买方', '卖方'], (ev.trade_rows || []).map((t) => h('tr', {class: 'evidence-trade'},
      h('td', {class: 'mono', text: t.trade_id}), h('td', {text: when(t.ts)}), h('td', {class: 'num', text: fixed(t.price, 2)}),
      h('td', {class: 'num', text: NF0.format(t.qty)}), h('td', {text: t.buy_account}), h('td', {text: t.sell_account}))), '没有成交明细')];
  }
  return [linksTable(ev.links || []),
    h('h4', {text: '弱关联（地址、IP，仅作参考）'}),
    table('weak-links', ['标识', '脱敏值', '账户'], (ev.weak_links || []).map((l) => h('tr', {},
      h('td', {text: label(KEY, l.key)}), h('td', {class: 'mono', text: l.value}), h('td', {text: l.accounts.join('、')}))), '没有弱关联')];
}

function linksTable(links) {
  return table('links', ['关联标识', '脱敏值', '账户'], links.map((l) => h('tr', {class: 'link'},
    h('td', {text: label(KEY, l.key)}), h('td', {class: 'mono', text: l.value}), h('td', {text: l.accounts.join('、')}))), '不在同一实控组');
}

function triageBlock(a) {
  if (!a.allowed.length) return h('p', {class: 'meta', id: 'triage-final', text: `${label(ALERT_STATUS, a.status)}：无后续处置`});
  const note = h('textarea', {id: 'note', placeholder: '处置说明（上报、排除时必填）'});
  return h('div', {class: 'triage'}, note, h('div', {class: 'actions'}, a.allowed.map((act) =>
    h('button', {class: act === 'dismiss' ? 'plain' : act === 'escalate' ? 'reject' : 'approve', id: `act-${act}`, data: {action: act},
      text: ACTION[act] || act, onclick: () => triage(act)}))), h('div', {class: 'err', id: 'triage-err'}));
}

function renderDetail(a) {
  detail = a;
  const card = $('detail');
  card.hidden = false;
  const y = h('select', {id: 'yaxis', onchange: (e) => { yAxis = e.target.value; orderTimeline($('timeline'), a.timeline, {y: yAxis}); }},
    h('option', {value: 'price', text: '纵轴：价格', selected: yAxis === 'price'}), h('option', {value: 'qty', text: '纵轴：数量', selected: yAxis === 'qty'}));
  fill(card,
    h('h3', {}, alertBadge(a.status), h('span', {text: `${label(ALERT_TYPE, a.type)} `}), h('span', {class: 'mono', id: 'detail-id', text: a.id})),
    h('p', {class: 'meta', text: `账户 ${a.accounts.join('、')} · 分数 ${fixed(a.score, 4)} · 首次发现 ${when(a.first_seen_at)} · ` +
      `最近发现 ${when(a.last_seen_at)}${a.updated_by ? ` · 最后处置 ${a.updated_by} ${when(a.updated_at)}` : ''}`}),
    a.note ? h('p', {id: 'detail-note', text: `处置说明：${a.note}`}) : null,
    h('h4', {text: '处置'}), triageBlock(a),
    a.type === 'control_group' ? null : [h('div', {class: 'actions toolbar'}, h('h4', {text: '委托时间线'}), y),
      h('div', {id: 'timeline', class: 'chart'})],
    h('h4', {text: '证据'}), evidenceBlock(a),
    h('h4', {text: '处置记录'}),
    table('triage-steps', ['时间', '人员', '处置', '从', '到', '说明'], a.steps.map((s) => h('tr', {class: 'triage-step'},
      h('td', {text: when(s.at)}), h('td', {text: s.by}), h('td', {text: label(ACTION, s.action)}),
      h('td', {text: label(ALERT_STATUS, s.from)}), h('td', {text: label(ALERT_STATUS, s.to)}), h('td', {text: s.note || '-'}))), '尚未处置'));
  if (a.type !== 'control_group') orderTimeline($('timeline'), a.timeline, {y: yAxis});
}

async function showDetail() {
  const id = selectedId();
  document.querySelectorAll('#alerts tr.alert').forEach((tr) => tr.classList.toggle('selected', tr.dataset.id === id));
  if (!id) { $('detail').hidden = true; detail = null; return; }
  try {
    renderDetail(await api(`/api/surveillance/alerts/${encodeURIComponent(id)}`));
  } catch (ex) {
    fill($('detail'), h('p', {class: 'err', text: `${id}：${ex.message}`}));
    $('detail').hidden = false;
  }
}

async function triage(action) {
  const note = $('note').value.trim();
  if (NEEDS_NOTE.has(action) && !note) { $('triage-err').textContent = '上报或排除须填写处置说明'; return; }
  try {
    const a = await api(`/api/surveillance/alerts/${encodeURIComponent(detail.id)}/triage`,
      {method: 'POST', body: JSON.stringify({action, note: note || null, version: detail.version})});
    renderDetail(a);
    await loadList();
    await loadGroups();
  } catch (ex) {
    $('triage-err').textContent = `${ex.message}（已重新读取预警）`;
    const err = ex.message;
    await showDetail();
    if ($('triage-err')) $('triage-err').textContent = err;
  }
}

async function run() {
  $('run').disabled = true;
  $('run-result').textContent = '运行中…';
  try {
    const r = await api('/api/surveillance/run', {method: 'POST', body: '{}'});
    $('run-result').textContent = `发现 ${r.found} 条（新增 ${r.new} 条，再次发现 ${r.seen_again} 条）· ` +
      `${r.source.orders} 条委托事件、${r.source.trades} 笔成交、${r.source.accounts} 个账户，用时 ${r.source.elapsed_s} 秒`;
    await loadList();
    await loadGroups();
    if (selectedId()) await showDetail();
  } catch (ex) {
    $('run-result').textContent = `运行失败：${ex.message}`;
  } finally {
    $('run').disabled = false;
  }
}

(async () => {
  const me = await whoami();
  if (me.role !== 'compliance') { denied($('page'), `市场监察仅限合规（当前角色：${label(ROLE, me.role)}）`); return; }
  const open = (e) => {
    const tr = e.target.closest('tr.alert');
    if (tr && (e.type === 'click' || e.key === 'Enter')) location.hash = encodeURIComponent(tr.dataset.id);
  };
  document.querySelector('#alerts tbody').addEventListener('click', open);
  document.querySelector('#alerts tbody').addEventListener('keydown', open);
  window.addEventListener('hashchange', showDetail);
  for (const id of ['type', 'status']) $(id).addEventListener('change', () => loadList().catch(showError));
  $('account').addEventListener('change', () => loadList().catch(showError));
  $('run').addEventListener('click', run);
  try { await Promise.all([loadList(), loadGroups()]); } catch (ex) { showError(ex); return; }
  if (selectedId()) await showDetail();
})();

function showError(ex) {
  $('list-err').textContent = `加载失败：${ex.message}`;
}
