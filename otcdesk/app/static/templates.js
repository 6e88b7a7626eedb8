// The structure templates page (templates.html), for admin: upload a template (POST /api/admin/templates; a refusal
// shows its reason field by field), the newest version of each (GET /api/admin/templates) and a template's history
// (GET /api/admin/templates/{structure}/versions); withdraw a template with a reason
// (POST /api/admin/templates/{structure}/withdraw): the parser stops understanding it, it shows as withdrawn.
const short8 = (s) => (s ? String(s).slice(0, 12) : '-');

function engines(e) {
  const parts = Object.entries(e || {}).map(([k, v]) => `${k} ${fixed(v.price_pct, 3)}%${isNum(v.stderr) ? ` ±${fixed(v.stderr * 100, 3)}` : ''}`);
  return parts.length ? parts.join(' · ') : '（必填参数无默认值，未试算）';
}

function showResult(node) { fill($('result'), node); }

async function upload() {
  const text = $('doc').value;
  let doc;
  try { doc = JSON.parse(text); } catch (ex) {
    showResult(h('div', {class: 'err', id: 'refusal'}, h('p', {text: `不是合法的 JSON：${ex.message}`})));
    return;
  }
  $('upload').disabled = true;
  try {
    const r = await fetch('/api/admin/templates', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(doc)});
    if (r.status === 401) { location.href = '/login'; return; }
    const body = await r.json();
    if (!r.ok) {
      const fields = Object.entries(body.fields || {});
      showResult(h('div', {class: 'err', id: 'refusal'}, h('p', {text: `未通过校验：${body.error || r.statusText}`}),
        fields.length ? h('ul', {id: 'fields'}, fields.map(([f, why]) => h('li', {data: {field: f}}, h('b', {text: f}), `：${why}`))) : null));
      return;
    }
    showResult(h('div', {class: 'ok', id: 'accepted', data: {structure: body.structure, version: body.version}},
      h('p', {text: body.unchanged ? `${body.structure} 与第 ${body.version} 版相同，未生成新版本` : `已上传 ${body.structure} 第 ${body.version} 版`}),
      h('p', {class: 'meta', text: `名称：${(body.names || []).join('、')} · SHA-256 ${short8(body.sha256)} · 试算（默认参数，演示行情）：${engines(body.engines)}`})));
    await load();
  } catch (ex) {
    showResult(h('div', {class: 'err', id: 'refusal'}, h('p', {text: `上传失败：${ex.message}`})));
  } finally {
    $('upload').disabled = false;
  }
}

async function history(structure) {
  const rows = await api(`/api/admin/templates/${encodeURIComponent(structure)}/versions`);
  $('history').hidden = false;
  $('history-title').textContent = `${structure} 的版本`;
  fill($('versions'), h('table', {}, h('thead', {}, h('tr', {}, ['版本', '名称', '来源', '上传人', '时间', 'SHA-256'].map((t) => h('th', {text: t})))),
    h('tbody', {}, rows.map((v) => h('tr', {class: 'version', data: {version: v.version}},
      h('td', {text: v.version}), h('td', {text: (v.names || []).join('、')}), h('td', {text: v.source}),
      h('td', {text: v.uploaded_by}), h('td', {text: when(v.uploaded_at)}), h('td', {class: 'mono', text: short8(v.sha256)}))))));
}

async function withdraw(row) {
  const structure = row.dataset.structure;
  const reason = row.querySelector('input.reason').value.trim();
  if (!reason) { showResult(h('div', {class: 'err', id: 'refusal'}, h('p', {text: `撤回 ${structure} 需填写原因`}))); return; }
  const button = row.querySelector('button.withdraw');
  button.disabled = true;
  try {
    const t = await api(`/api/admin/templates/${encodeURIComponent(structure)}/withdraw`, {method: 'POST', body: JSON.stringify({reason})});
    showResult(h('div', {class: 'ok', id: 'withdrawn', data: {structure: t.structure, version: t.version}},
      h('p', {text: `已撤回 ${t.structure}（第 ${t.version} 版）：询价不再识别它的名称；已成交的交易仍按其版本估值。重新上传即恢复为新版本。`})));
    await load();
  } catch (ex) {
    showResult(h('div', {class: 'err', id: 'refusal'}, h('p', {text: `撤回失败：${ex.message}`})));
    button.disabled = false;
  }
}

function status(t) {
  if (t.withdrawn_at) return h('td', {class: 'status', text: `已撤回（${t.withdrawn_by}，${when(t.withdrawn_at)}）`});
  return h('td', {class: 'status', text: '生效'});
}

function actions(t) {
  const history = h('button', {class: 'plain history', text: '版本历史'});
  if (t.withdrawn_at) return h('td', {}, history);
  return h('td', {}, history, h('input', {class: 'reason', type: 'text', maxlength: '500', placeholder: '撤回原因'}),
    h('button', {class: 'reject withdraw', text: '撤回'}));
}

async function load() {
  const rows = await api('/api/admin/templates');
  if (!rows.length) { fill($('list'), h('p', {class: 'meta', id: 'empty', text: '还没有上传的模板'})); return; }
  fill($('list'), h('table', {}, h('thead', {}, h('tr', {}, ['结构', '名称', '版本', '上传人', '时间', '状态', ''].map((t) => h('th', {text: t})))),
    h('tbody', {}, rows.map((t) => h('tr', {class: t.withdrawn_at ? 'template withdrawn' : 'template', data: {structure: t.structure}},
      h('td', {class: 'mono', text: t.structure}), h('td', {text: (t.names || []).join('、')}), h('td', {class: 'num', text: t.version}),
      h('td', {text: t.uploaded_by}), h('td', {text: when(t.uploaded_at)}), status(t), actions(t))))));
}

(async () => {
  const me = await whoami();
  if (me.role !== 'admin') { denied($('page'), `结构模板仅限管理员（当前角色：${label(ROLE, me.role)}）`); return; }
  $('upload').addEventListener('click', upload);
  $('file').addEventListener('change', async () => {
    const f = $('file').files[0];
    if (f) $('doc').value = await f.text();
  });
  $('list').addEventListener('click', (e) => {
    const row = e.target.closest('tr.template');
    if (row && e.target.closest('button.history')) history(row.dataset.structure).catch((ex) => showResult(h('div', {class: 'err', text: ex.message})));
    if (row && e.target.closest('button.withdraw')) withdraw(row);
  });
  try { await load(); } catch (ex) { denied($('list'), `加载失败：${ex.message}`); }
})();
