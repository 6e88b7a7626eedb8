// The invited client's application page (apply.html, no login). The invitation token comes from the link's
// fragment (/apply#token=...), which browsers never send to a server, and goes to the API only in JSON bodies or
// the X-Invitation-Token header. POST /api/kyc/me says where the application stands; the page shows the form
// (first submission, or correction after a return), the review in progress, the agreement to sign, or the end.
// Client-side checks only hint; the server decides, and its per-field errors are shown next to each field
// without touching what the client typed.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get('token') || '';
const TYPES = {'application/pdf': 'PDF', 'image/png': 'PNG', 'image/jpeg': 'JPEG'};
const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;
const STEPS = [['form', '填写申请'], ['sales_review', '销售审核'], ['compliance_review', '合规审核'],
  ['risk_review', '风控审核'], ['signing', '签署协议'], ['approved', '开户完成']];
const CLIENT_STATE = {
  invited: '请填写开户申请', returned: '申请已退回，请按审核意见修改后重新提交',
  sales_review: '申请已提交，正在由销售人员审核', compliance_review: '申请正在由合规部门审核（含黑名单与负面舆情筛查）',
  risk_review: '申请正在由风险管理部门审核（适当性与交易额度）', signing: '审核已通过，请阅读并签署协议',
  approved: '开户完成，协议已签署', rejected: '很遗憾，开户申请未通过', suspended: '账户交易已暂停，请联系您的销售人员',
};
const HTTP_TEXT = {0: '网络连接失败，请检查网络后重试', 400: '请求有误', 401: '邀请链接无效', 403: '邀请链接无效或无权操作',
  404: '邀请链接无效或申请不存在', 409: '当前申请状态不允许此操作', 410: '邀请已过期或已被撤销', 413: '文件或内容过大',
  415: '内容类型不受支持', 422: '填写内容有误', 429: '操作过于频繁，请稍后再试'};

let view = null;  // the last answer of POST /api/kyc/me
const docs = new Map();  // kind → {document_id, filename, size, sha256} chosen for the submission

// ---- talking to the API -----------------------------------------------------------------------------------
async function call(path, body) {
  let r;
  try {
    r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body), cache: 'no-store'});
  } catch (ex) {
    return {ok: false, status: 0, data: {}};
  }
  let data = {};
  try { data = await r.json(); } catch (ex) { /* a proxy's HTML error page */ }
  return {ok: r.ok, status: r.status, data: data || {}};
}

/** What a refusal means, in Chinese first, with the server's own words after it. */
function problem(res) {
  const lead = HTTP_TEXT[res.status] || (res.status >= 500 ? '服务暂时不可用，请稍后再试' : `请求失败（${res.status}）`);
  const said = [res.data.error, typeof res.data.detail === 'string' ? res.data.detail : null].filter(Boolean).join('：');
  return said && res.status ? `${lead}（${said}）` : lead;
}

async function sha256Hex(buffer) {
  if (!(window.crypto && crypto.subtle)) return null;  // only in a secure context (https, localhost)
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- the form's fields and their hints ---------------------------------------------------------------------
const USCC_CHARS = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const USCC_W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const ID_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

function usccHint(v) {
  if (!v) return '';
  if (v.length !== 18) return `应为18位，已输入${v.length}位`;
  const bad = [...v].filter((c) => !USCC_CHARS.includes(c));
  if (bad.length) return `含有不使用的字符：${[...new Set(bad)].join('')}（不使用 I、O、S、V、Z）`;
  const sum = [...v.slice(0, 17)].reduce((s, c, i) => s + USCC_CHARS.indexOf(c) * USCC_W[i], 0);
  const check = USCC_CHARS[(31 - (sum % 31)) % 31];
  return v[17] === check ? '' : `第18位校验位似乎应为 ${check}，请与营业执照核对`;
}

function idHint(v) {
  if (!v) return '';
  if (v.length !== 18) return `应为18位，已输入${v.length}位`;
  if (!/^\d{17}[\dX]$/.test(v)) return '前17位应为数字，第18位为数字或 X';
  const y = +v.slice(6, 10), m = +v.slice(10, 12), d = +v.slice(12, 14);
  const born = new Date(Date.UTC(y, m - 1, d));
  if (born.getUTCFullYear() !== y || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d) return `出生日期 ${v.slice(6, 14)} 不是有效日期`;
  if (born > new Date()) return '出生日期晚于今天';
  const sum = [...v.slice(0, 17)].reduce((s, c, i) => s + Number(c) * ID_W[i], 0);
  const check = '10X98765432'[sum % 11];
  return v[17] === check ? '' : `第18位校验位似乎应为 ${check}，请与身份证核对`;
}

function capitalHint(v) {
  if (!v) return '';
  const n = Number(v.replace(/[,，\s]/g, ''));
  if (!Number.isFinite(n) || n <= 0) return '请输入大于0的金额（元），只填数字';
  return {info: n >= 1e8 ? `即 ${(n / 1e8).toLocaleString('zh-CN', {maximumFractionDigits: 4})} 亿元`
    : `即 ${(n / 1e4).toLocaleString('zh-CN', {maximumFractionDigits: 2})} 万元`};
}

const mobileHint = (v) => (!v || /^(\+?86)?1[3-9]\d{9}$/.test(v.replace(/[\s-]/g, '')) ? '' : '应为11位中国大陆手机号码');

const FIELDS = [
  {key: 'name', label: '机构全称', help: '与营业执照一致，且须与邀请中的机构名称一致', attrs: {autocomplete: 'organization', maxlength: 100}},
  {key: 'uscc', label: '统一社会信用代码', help: '18位，见营业执照', upper: true, check: usccHint,
    attrs: {autocapitalize: 'characters', autocomplete: 'off', spellcheck: 'false', maxlength: 18}},
  {key: 'legal_representative', label: '法定代表人姓名', attrs: {autocomplete: 'off', maxlength: 40}},
  {key: 'legal_representative_id', label: '法定代表人居民身份证号', help: '18位，末位可能为 X', upper: true, check: idHint,
    attrs: {autocapitalize: 'characters', autocomplete: 'off', spellcheck: 'false', maxlength: 18}},
  {key: 'registered_capital_cny', label: '注册资本（元）', help: '只填数字，单位为元', check: capitalHint,
    attrs: {inputmode: 'numeric', autocomplete: 'off', maxlength: 20}},
  {key: 'contact_mobile', label: '联系人手机号', check: mobileHint, attrs: {type: 'tel', inputmode: 'tel', autocomplete: 'tel', maxlength: 16}},
  {key: 'contact_name', label: '联系人姓名', attrs: {autocomplete: 'name', maxlength: 40}},
  {key: 'address', label: '注册地址', wide: true, attrs: {autocomplete: 'street-address', maxlength: 200}},
];

function field(f, value) {
  const id = `f-${f.key}`;
  const input = h('input', {id, name: f.key, type: 'text', value: value ?? '', 'aria-describedby': `${id}-err ${id}-hint`, ...f.attrs});
  const hint = h('div', {class: 'hint', id: `${id}-hint`, text: f.help || ''});
  input.addEventListener('input', () => {
    if (f.upper) {
      const at = input.selectionStart, up = input.value.toUpperCase().replace(/\s/g, '');
      if (up !== input.value) { input.value = up; try { input.setSelectionRange(at, at); } catch (ex) { /* not a text input */ } }
    }
    clearError(f.key);
  });
  // a hint never blocks: the server decides. A check answers a warning (string) or {info} (e.g. capital in 万元).
  const check = () => {
    const said = f.check ? f.check(input.value.trim()) : '';
    const warn = typeof said === 'string' && said !== '';
    hint.textContent = (warn ? said : said && said.info) || f.help || '';
    hint.classList.toggle('warn', warn);
  };
  input.addEventListener('blur', check);
  input.addEventListener('input', () => { if (hint.classList.contains('warn') || f.key === 'registered_capital_cny') check(); });
  return h('label', {class: `field${f.wide ? ' wide' : ''}`, data: {field: f.key}},
    h('span', {text: f.label}), input, hint, h('div', {class: 'field-err', id: `${id}-err`, data: {for: f.key}, role: 'alert'}));
}

function categoryField(value) {
  const radio = (v, text) => h('label', {}, h('input', {type: 'radio', name: 'investor_category', value: v, checked: value === v}), text);
  const box = h('div', {class: 'field wide', data: {field: 'investor_category'}},
    h('span', {text: '投资者类别'}),
    h('div', {class: 'choice', id: 'f-investor_category'}, radio('professional', '专业投资者'), radio('ordinary', '普通投资者')),
    h('div', {class: 'hint', text: '按《证券期货投资者适当性管理办法》，场外衍生品交易仅面向专业投资者'}),
    h('div', {class: 'field-err', id: 'f-investor_category-err', data: {for: 'investor_category'}, role: 'alert'}));
  box.addEventListener('change', () => clearError('investor_category'));
  return box;
}

function clearError(key) {
  const err = document.querySelector(`.field-err[data-for="${CSS.escape(key)}"]`);
  if (err) err.textContent = '';
  const input = $(`f-${key}`);
  if (input) { input.classList.remove('invalid'); input.removeAttribute('aria-invalid'); }
}

/** The server's {field: reason}: each next to its field; a reason for no field of the form goes to the form's own line. */
function showFieldErrors(fields) {
  document.querySelectorAll('.field-err').forEach((e) => { e.textContent = ''; });
  document.querySelectorAll('.field input.invalid').forEach((i) => i.classList.remove('invalid'));
  const loose = [];
  let first = null;
  for (const [key, reason] of Object.entries(fields || {})) {
    const short = key.replace(/^institution\./, '');
    const err = document.querySelector(`.field-err[data-for="${CSS.escape(short)}"]`);
    if (!err) { loose.push(`${FIELDS.find((f) => f.key === short)?.label || short}：${reason}`); continue; }
    err.textContent = reason;
    const input = $(`f-${short}`);
    if (input) { input.classList.add('invalid'); input.setAttribute('aria-invalid', 'true'); }
    first = first || input || err;
  }
  return {loose, first};
}

function values() {
  const out = {};
  for (const f of FIELDS) out[f.key] = $(`f-${f.key}`).value.trim();
  const cap = out.registered_capital_cny.replace(/[,，\s]/g, '');
  out.registered_capital_cny = cap !== '' && Number.isFinite(Number(cap)) ? Number(cap) : out.registered_capital_cny;
  const cat = document.querySelector('input[name=investor_category]:checked');
  out.investor_category = cat ? cat.value : '';
  return out;
}

// ---- documents -------------------------------------------------------------------------------------------
const requiredKinds = () => (view.required_documents || Object.keys(DOC_KIND)).map((k) => (typeof k === 'string' ? k : k.kind));
const kindLabel = (kind) => ((view.required_documents || []).find((k) => k.kind === kind) || {}).label || DOC_KIND[kind] || kind;
const maxBytes = () => view.max_upload_bytes || DEFAULT_MAX_BYTES;

function docStatus(kind) {
  const d = docs.get(kind);
  if (!d) return h('span', {class: 'meta', text: '尚未上传'});
  return h('span', {class: 'ok uploaded'}, `已上传：${d.filename}（${bytes(d.size)}）`, h('br'),
    h('span', {class: 'meta'}, 'SHA-256：', h('span', {class: 'hash sha', text: d.sha256 || '-'})),
    d.verified ? h('span', {class: 'meta ok', text: ' · 与本机计算一致'}) : null);
}

function uploadRow(kind) {
  const input = h('input', {type: 'file', id: `doc-${kind}`, accept: 'application/pdf,image/png,image/jpeg', data: {kind}});
  const status = h('div', {class: 'status', id: `doc-${kind}-status`}, docStatus(kind));
  input.addEventListener('change', () => { if (input.files[0]) upload(kind, input.files[0], status); });
  return h('div', {class: 'upload', data: {kind}},
    h('label', {for: `doc-${kind}`, text: kindLabel(kind)}), input, status,
    h('div', {class: 'field-err status', id: `doc-${kind}-err`, data: {for: `documents.${kind}`}, role: 'alert'}));
}

function readAsDataUrl(file, progress) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onprogress = (e) => { if (e.lengthComputable) progress(e.loaded / e.total / 4); };
    fr.onload = () => resolve(fr.result);
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(file);
  });
}

/** POST the document with upload progress (fetch reports none): {ok, status, data}. */
function send(body, progress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/kyc/documents');
    xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress(0.25 + 0.75 * e.loaded / e.total); };
    xhr.onload = () => {
      let data = {};
      try { data = JSON.parse(xhr.responseText) || {}; } catch (ex) { /* not JSON */ }
      resolve({ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, data});
    };
    xhr.onerror = () => resolve({ok: false, status: 0, data: {}});
    xhr.send(JSON.stringify(body));
  });
}

async function upload(kind, file, status) {
  const type = file.type || (/\.pdf$/i.test(file.name) ? 'application/pdf' : '');
  const keep = docs.has(kind) ? '（仍使用之前上传的文件）' : '';
  if (!TYPES[type]) { fill(status, h('span', {class: 'err', text: `只接受 PDF、PNG 或 JPEG 文件，${file.name} 不是${keep}`})); return; }
  if (file.size > maxBytes()) { fill(status, h('span', {class: 'err', text: `文件过大：${bytes(file.size)}，上限 ${bytes(maxBytes())}${keep}`})); return; }
  const bar = h('progress', {max: 100, value: 0});
  const line = h('span', {class: 'meta', text: `正在上传 ${file.name}…`});
  fill(status, line, bar);
  const progress = (x) => { bar.value = Math.round(x * 100); };
  let dataUrl;
  try { dataUrl = await readAsDataUrl(file, progress); } catch (ex) { fill(status, h('span', {class: 'err', text: `无法读取文件：${ex.message}`})); return; }
  const res = await send({token: TOKEN, kind, filename: file.name, content_type: type, data_base64: dataUrl.slice(dataUrl.indexOf(',') + 1)}, progress);
  if (!res.ok) {
    const reason = res.data.fields ? Object.values(res.data.fields).join('；') : '';
    fill(status, h('span', {class: 'err upload-err', text: `上传失败：${reason || problem(res)}${keep}`}));
    return;
  }
  const local = await sha256Hex(await file.arrayBuffer()).catch(() => null);
  const d = {document_id: res.data.document_id || res.data.id, kind, filename: res.data.filename || file.name,
    size: res.data.size ?? file.size, sha256: res.data.sha256, verified: Boolean(local && local === res.data.sha256)};
  docs.set(kind, d);
  fill(status, docStatus(kind));
  clearError(`documents.${kind}`);
  clearError('documents');
}

// ---- the views -------------------------------------------------------------------------------------------
function steps(state) {
  const at = state === 'returned' || state === 'invited' || !state ? 0 : STEPS.findIndex(([k]) => k === state);
  fill($('steps'), STEPS.map(([k, text], i) => h('li', {class: i < at || state === 'approved' ? 'done' : i === at ? 'now' : '', data: {step: k}, text})));
}

function notice(cls, ...children) { return h('div', {class: `notice ${cls}`}, ...children); }

function returnComment(app) {
  if (app.return_comment) return app.return_comment;
  const back = (app.history || []).filter((s) => s.to === 'returned');
  return back.length ? back[back.length - 1].comment : '';
}

function formView(app) {
  const inv = view.invitation || {};
  const given = (app && app.institution) || {};
  const start = {name: inv.institution_name, contact_name: inv.contact_name, contact_mobile: inv.contact_mobile, ...given};
  const returned = app && app.state === 'returned';
  const form = h('form', {id: 'application', novalidate: true},
    returned ? notice('bad', h('strong', {text: '审核意见：'}), h('span', {id: 'return-comment', text: returnComment(app) || '（无）'}),
      h('div', {class: 'meta', text: '请按意见修改下列信息或重新上传文件，然后重新提交。'})) : null,
    h('div', {class: 'card'}, h('h3', {text: '机构信息'}),
      h('div', {class: 'form'}, FIELDS.map((f) => field(f, start[f.key] != null ? String(start[f.key]) : '')), categoryField(start.investor_category))),
    h('div', {class: 'card'}, h('h3', {text: '证明文件'}),
      h('p', {class: 'meta', text: `PDF、PNG 或 JPEG，单个文件不超过 ${bytes(maxBytes())}。上传后显示文件的 SHA-256 摘要，可与本地文件核对。`}),
      requiredKinds().map(uploadRow),
      h('div', {class: 'field'}, h('div', {class: 'field-err', data: {for: 'documents'}, role: 'alert'}))),
    h('div', {class: 'card'},
      h('div', {class: 'err', id: 'form-err', role: 'alert'}),
      h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'approve big', id: 'submit', text: returned ? '重新提交申请' : '提交申请'}))));
  form.addEventListener('submit', (e) => { e.preventDefault(); submit(form); });
  return form;
}

async function submit(form) {
  const btn = $('submit'), err = $('form-err');
  const missing = requiredKinds().filter((k) => !docs.has(k));
  err.textContent = '';
  btn.disabled = true;
  btn.textContent = '提交中…';
  const res = await call('/api/kyc/applications', {token: TOKEN, institution: values(),
    document_ids: [...docs.values()].map((d) => d.document_id)});
  btn.disabled = false;
  btn.textContent = view.application && view.application.state === 'returned' ? '重新提交申请' : '提交申请';
  if (res.ok) { await load(); window.scrollTo(0, 0); return; }
  if (res.data.fields) {
    const {loose, first} = showFieldErrors(res.data.fields);
    err.textContent = [`${problem({status: 422, data: {}})}：请按提示修改标红的项目后再提交。`, ...loose].join('\n');
    if (first) { first.scrollIntoView({block: 'center'}); if (first.focus) first.focus({preventScroll: true}); }
    return;
  }
  err.textContent = problem(res) + (missing.length && res.status === 422 ? `；尚未上传：${missing.map(kindLabel).join('、')}` : '');
}

function summary(app) {
  const i = app.institution || {};
  const rows = [['机构全称', i.name], ['统一社会信用代码', i.uscc], ['法定代表人', i.legal_representative],
    ['注册资本（元）', isNum(i.registered_capital_cny) ? money(i.registered_capital_cny) : i.registered_capital_cny],
    ['联系人', [i.contact_name, i.contact_mobile].filter(Boolean).join(' ')], ['投资者类别', label(INVESTOR, i.investor_category)]];
  return h('table', {class: 'facts'}, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', {text: k}), h('td', {text: v ?? '-'})))));
}

function reviewView(app) {
  const refresh = h('button', {class: 'plain big', id: 'refresh', type: 'button', text: '刷新进度'});
  refresh.addEventListener('click', load);
  return h('div', {class: 'card', id: 'in-review'},
    h('h3', {text: '审核中'}), h('p', {id: 'state-text', text: CLIENT_STATE[app.state]}),
    h('p', {class: 'meta', text: `最近更新：${when(app.updated_at || (app.history || []).slice(-1).map((s) => s.at)[0])}。审核完成后请回到本页面签署协议。`}),
    summary(app), h('div', {class: 'actions'}, refresh));
}

/** The agreement PDF through fetch with the token in a header (never in a URL), as a blob URL behind two links
 * (`links`: read in a new tab, save); its SHA-256 as computed here, or null. */
async function agreementLinks(app, links, note) {
  let r;
  try {
    r = await fetch(`/api/kyc/applications/${encodeURIComponent(app.id)}/agreement.pdf`, {headers: {'X-Invitation-Token': TOKEN}, cache: 'no-store'});
  } catch (ex) { r = null; }
  if (!r || !r.ok) { fill(note, h('span', {class: 'err', text: `协议加载失败：${problem({status: r ? r.status : 0, data: {}})}`})); return null; }
  const buf = await r.arrayBuffer();
  const url = URL.createObjectURL(new Blob([buf], {type: 'application/pdf'}));
  for (const a of links) { a.href = url; a.hidden = false; }
  return sha256Hex(buf).catch(() => null);
}

function pdfLinks(name, readText) {
  return [h('a', {class: 'button big', id: 'agreement-open', target: '_blank', rel: 'noopener', hidden: true, text: readText}),
    h('a', {class: 'button big', id: 'agreement-link', download: name, hidden: true, text: '下载 PDF'})];
}

function signingView(app) {
  const links = pdfLinks('场外衍生品交易协议.pdf', '阅读协议');
  const note = h('div', {class: 'meta', id: 'agreement-sha', text: '正在加载协议…'});
  const box = h('input', {type: 'checkbox', id: 'accept', disabled: true});
  const sign = h('button', {class: 'approve big', id: 'sign', type: 'button', disabled: true, text: '同意并签署'});
  const err = h('div', {class: 'err', id: 'sign-err', role: 'alert'});
  let accepted = null;
  agreementLinks(app, links, note).then((sha) => {
    if (links[0].hidden) return;
    accepted = sha || (view.agreement && view.agreement.sha256) || null;
    fill(note, accepted ? h('span', {}, '协议 SHA-256：', h('span', {class: 'hash', text: accepted})) : '');
    box.disabled = false;
  });
  box.addEventListener('change', () => { sign.disabled = !box.checked; });
  sign.addEventListener('click', async () => {
    sign.disabled = true;
    err.textContent = '';
    const res = await call(`/api/kyc/applications/${encodeURIComponent(app.id)}/sign`, accepted ? {token: TOKEN, accepted_sha256: accepted} : {token: TOKEN});
    if (res.ok) { await load(); window.scrollTo(0, 0); return; }
    err.textContent = `签署未完成：${problem(res)}`;
    sign.disabled = !box.checked;
  });
  return h('div', {class: 'card', id: 'signing'},
    h('h3', {text: '签署协议'}), h('p', {id: 'state-text', text: CLIENT_STATE.signing}),
    h('p', {class: 'meta', text: '请先打开协议完整阅读；签署后协议将加盖电子签章，您可随时在本页面下载。'}),
    h('div', {class: 'actions'}, links), note,
    h('label', {class: 'confirm'}, box, h('span', {text: '我已完整阅读并理解《场外衍生品交易协议》的全部条款（含风险揭示），同意以本机构名义签署。'})),
    h('div', {class: 'actions'}, sign), err);
}

function doneView(app) {
  const ag = app.agreement || view.agreement || {};
  const links = pdfLinks('场外衍生品交易协议（已签署）.pdf', '查看已签署的协议');
  const note = h('div', {class: 'meta'});
  agreementLinks(app, links, note);
  return h('div', {class: 'card', id: 'done'},
    h('h3', {text: '开户完成'}), notice('good', h('span', {id: 'state-text', text: CLIENT_STATE.approved})),
    h('p', {}, '已签署协议的 SHA-256：', h('span', {class: 'hash', id: 'signed-sha', text: ag.sha256 || '-'})),
    h('p', {class: 'meta', text: `签署时间：${when(ag.signed_at)}。您的销售人员将为您开通询价群。`}),
    h('div', {class: 'actions'}, links), note);
}

function endView(app) {
  const why = (app.history || []).filter((s) => s.to === app.state).map((s) => s.comment).filter(Boolean).pop();
  return h('div', {class: 'card', id: 'closed'}, h('h3', {text: label(KYC_STATE, app.state)}),
    notice('bad', h('span', {id: 'state-text', text: CLIENT_STATE[app.state] || app.state})),
    why ? h('p', {}, '说明：', h('span', {id: 'end-comment', text: why})) : null,
    h('p', {class: 'meta', text: '如有疑问，请联系您的销售人员。'}));
}

function fatal(text, detail) {
  steps(null);
  fill($('steps'));
  fill($('view'), h('div', {class: 'card', id: 'fatal'}, notice('bad', h('strong', {text})),
    detail ? h('p', {class: 'meta', text: detail}) : null,
    h('p', {class: 'meta', text: '请向您的销售人员索取新的邀请链接。链接请勿转发他人。'})));
}

function render() {
  const app = view.application;
  const state = app ? app.state : 'invited';
  steps(state);
  docs.clear();
  for (const d of view.documents || []) docs.set(d.kind, {...d, document_id: d.document_id || d.id});  // the latest of each kind last
  const inv = view.invitation || {};
  fill($('status'), h('p', {class: 'meta'},
    `${inv.institution_name || (app && app.institution && app.institution.name) || ''} · 当前状态：`, h('strong', {id: 'client-state', text: CLIENT_STATE[state] || state}),
    inv.expires_at && (!app || ['invited', 'returned'].includes(state)) ? ` · 链接有效期至 ${when(inv.expires_at)}` : ''));
  let node;
  if (!app || state === 'invited' || state === 'returned') node = formView(app);
  else if (['sales_review', 'compliance_review', 'risk_review'].includes(state)) node = reviewView(app);
  else if (state === 'signing') node = signingView(app);
  else if (state === 'approved') node = doneView(app);
  else node = endView(app);
  fill($('view'), node);
}

async function load() {
  if (!TOKEN) { fatal('链接不完整：缺少邀请码。', '请完整复制销售人员发给您的链接（包括 # 之后的部分）。'); return; }
  const res = await call('/api/kyc/me', {token: TOKEN});
  if (!res.ok) {
    const text = res.status === 410 ? '邀请已过期或已被撤销。' : res.status === 0 || res.status >= 500 ? problem(res) : '邀请链接无效。';
    fatal(text, res.status && res.status < 500 ? problem(res) : '');
    return;
  }
  view = res.data;
  render();
}

window.addEventListener('hashchange', () => location.reload());
load();
