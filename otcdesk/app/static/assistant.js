/* The assistant page: the chat (POST /api/assistant/chat) with each turn's tool calls (allowed ✓ / refused ✗),
   citations and, where the answer is numbers, a table, a bar chart or an order timeline; and the direct knowledge
   base search (POST /api/kb/ask). Everything the server sends reaches the page as text nodes (pages.js `h`). */
let threadId = null;

function openPassage(kbName, chunkId) {
  return api(`/api/kb/${encodeURIComponent(kbName)}/passages/${encodeURIComponent(chunkId)}`).then((p) => {
    const box = $('passage'); box.hidden = false;
    fill(box, h('h3', {text: `${p.source} · ${p.heading || ''}`}), h('p', {class: 'passage-text', text: p.text}));
    box.scrollIntoView({block: 'nearest'});
  });
}

function citationCards(cites, kbName) {
  return (cites || []).map((c, i) => h('div', {class: 'card cite'},
    h('div', {class: 'meta'}, `[${i + 1}] ${c.source || ''} ${c.heading || ''} · score ${fixed(c.score)} `,
      c.chunk_id ? h('a', {href: '#', class: 'open', text: '打开原文',
        onclick: (e) => { e.preventDefault(); openPassage(c.kb || kbName, c.chunk_id); }}) : null),
    c.text || ''));
}

const cell = (v) => (isNum(v) ? (Math.abs(v) >= 1000 ? money(v) : short(v)) : v == null ? '-' : typeof v === 'boolean' ? (v ? '是' : '否') : String(v));

function table(columns, rows) {
  return h('table', {class: 'view-table'},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', {text: c.label})))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', {class: isNum(r[c.key]) ? 'num' : null, text: cell(r[c.key])}))))));
}

/** Horizontal bars around a zero line (negative to the left): one per label. */
function bars(chart) {
  const items = chart.bars || [], max = Math.max(1, ...items.map((b) => Math.abs(b.value || 0)));
  const W = 560, rowH = 22, left = 110, mid = left + (W - left) / 2, half = (W - left) / 2 - 10;
  const s = svg('svg', {viewBox: `0 0 ${W} ${items.length * rowH + 24}`, role: 'img', 'aria-label': chart.label});
  s.append(svg('line', {x1: mid, x2: mid, y1: 0, y2: items.length * rowH, stroke: '#999'}));
  items.forEach((b, i) => {
    const w = Math.abs(b.value || 0) / max * half, y = i * rowH + 4;
    s.append(svg('text', {x: 4, y: y + 13, 'font-size': 12, text: b.label}));
    s.append(svg('rect', {class: 'bar', x: (b.value || 0) < 0 ? mid - w : mid, y, width: Math.max(w, 1), height: rowH - 8,
      fill: (b.value || 0) < 0 ? '#d9822b' : '#1f6fb2'}, svg('title', {text: `${b.label}: ${money(b.value)}`})));
  });
  s.append(svg('text', {x: mid, y: items.length * rowH + 18, 'font-size': 11, 'text-anchor': 'middle', text: `${chart.label}（元）`}));
  return h('div', {class: 'chart'}, s);
}

function view(v) {
  if (!v) return null;
  return h('div', {class: 'view'}, h('h4', {text: v.title || ''}), v.chart && v.chart.kind === 'bars' ? bars(v.chart) : null,
    table(v.columns || [], v.rows || []),
    v.timeline ? [h('h4', {text: v.timeline.title}), table([{key: 'ts', label: '时间'}, {key: 'event', label: '事件'},
      {key: 'order_id', label: '委托'}, {key: 'account', label: '账户'}, {key: 'side', label: '方向'},
      {key: 'qty', label: '数量'}, {key: 'price', label: '价格'}], v.timeline.rows || [])] : null);
}

function toolCalls(calls) {
  if (!calls.length) return null;
  return h('table', {class: 'tool-calls'},
    h('thead', {}, h('tr', {}, ['工具', '参数', '允许', '摘要'].map((t) => h('th', {text: t})))),
    h('tbody', {}, calls.map((c) => h('tr', {class: c.allowed ? 'allowed' : 'denied', data: {tool: c.tool}},
      h('td', {class: 'tool', text: c.tool}), h('td', {class: 'args'}, h('code', {text: JSON.stringify(c.args)})),
      h('td', {class: 'allowed-mark', text: c.allowed ? '✓' : '✗', title: c.allowed ? '已执行' : (c.reason || '未执行')}),
      h('td', {text: c.summary || ''})))));
}

function turn(question, a) {
  return h('div', {class: 'chat-turn'}, h('div', {class: 'q', text: question}),
    h('div', {class: 'card reply'}, h('p', {class: 'reply-text', text: a.reply}), toolCalls(a.tool_calls || []),
      (a.tool_calls || []).filter((c) => c.allowed && c.view).map((c) => view(c.view)),
      (a.citations || []).length ? [h('h4', {text: '引用'}), citationCards(a.citations, 'default')] : null,
      h('div', {class: 'meta', text: `规划：${a.planner === 'llm' ? 'LLM' : '规则路由'} · 对话 ${a.thread_id.slice(0, 8)}`})));
}

$('chat').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('msg').value.trim(); if (!text) return;
  $('chat-err').textContent = ''; $('msg').disabled = true;
  try {
    const a = await api('/api/assistant/chat', {method: 'POST', body: JSON.stringify(threadId ? {message: text, thread_id: threadId} : {message: text})});
    threadId = a.thread_id; $('chat-log').append(turn(text, a)); $('msg').value = '';
  } catch (ex) { $('chat-err').textContent = ex.message; }
  $('msg').disabled = false; $('msg').focus();
});
$('new-thread').addEventListener('click', () => { threadId = null; clear($('chat-log')); });

$('ask').addEventListener('submit', async (e) => {
  e.preventDefault();
  const box = $('answer'); box.hidden = false; box.textContent = '检索中…';
  try {
    const a = await api('/api/kb/ask', {method: 'POST', body: JSON.stringify({question: $('q').value, kb: $('kb').value})});
    fill(box, h('h3', {text: a.refused ? '无法回答' : '回答'}), h('p', {id: 'answer-text', text: a.answer}));
    fill($('cites'), citationCards(a.citations, $('kb').value));
  } catch (ex) { box.textContent = ex.message; }
});
whoami();
