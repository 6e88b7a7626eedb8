// One application under review (kyc.html?id=...): GET /api/kyc/applications/{id} and only what the signed-in
// role decides — sales: the institution and its contacts; compliance: the screening (blacklist, negative news
// with passages), the documents with their SHA-256, the due-diligence report; risk: investor category,
// suitability and the limits it proposes — then the history, and the decision (approve / return / reject, a
// comment required to return or reject) only when it is this role's turn. Compliance re-screens; suspend,
// reinstate and reopen go to the roles the machine names; sales bind a chat group to an approved institution.
const READERS = ['sales', 'compliance', 'risk', 'admin'];
const REVIEW = ['sales_review', 'compliance_review', 'risk_review'];
// the machine's non-decision triggers (workflows/kyc.py TRIGGER_ROLES) and the states they leave
const TRIGGERS = [
  {trigger: 'suspend', text: '暂停交易', from: ['approved'], roles: ['compliance', 'risk', 'admin']},
  {trigger: 'reinstate', text: '恢复交易', from: ['suspended'], roles: ['compliance', 'admin']},
  {trigger: 'reopen', text: '重新审核（定期复核）', from: ['approved', 'suspended'], roles: ['sales', 'compliance', 'admin']},
  {trigger: 'withdraw', text: '撤回申请（客户不再办理）', from: ['returned', 'signing'], roles: ['sales', 'compliance', 'admin']},
];
const FIELD = {name: '机构全称', uscc: '统一社会信用代码', legal_representative: '法定代表人', legal_representative_id: '法定代表人身份证号',
  registered_capital_cny: '注册资本（元）', address: '注册地址', contact_name: '联系人', contact_mobile: '联系人手机号',
  investor_category: '投资者类别'};
const LIMIT = {notional_cny: '名义本金总额上限（元）', single_trade_cny: '单笔名义本金上限（元）', tenor_months: '最长期限（月）'};
const SUBJECT = {institution: '机构', legal_representative: '法定代表人'};
const id = new URLSearchParams(location.search).get('id') || '';
const base = `/api/kyc/applications/${encodeURIComponent(id)}`;
let me = null;
let app = null;
const said = {ok: '', err: ''};  // the last action's outcome, kept over a refetch's re-render
function say(kind, text) { said[kind] = text; const el = $(`action-${kind}`); if (el) el.textContent = text; }

const myTurn = (a) => (a.may_decide != null ? a.may_decide : a.awaiting_role === me.role && REVIEW.includes(a.state));
const roleSection = (a) => a.view || {};
const reachedCompliance = (a) => (a.history || []).some((s) => s.to === 'compliance_review');
const factsTable = (cls, rows) => h('table', {class: `facts ${cls}`}, h('tbody', {},
  rows.map(([k, v, c]) => h('tr', {data: c ? {key: c} : {}}, h('th', {text: k}), h('td', {text: v == null || v === '' ? '-' : String(v)})))));
const fieldText = (k, v) => (k === 'registered_capital_cny' ? money(Number(v)) : k === 'investor_category' ? label(INVESTOR, v) : v);

// ---- what each role decides --------------------------------------------------------------------------------
function salesBlock(a) {
  const inst = {...(a.institution || {}), ...(roleSection(a).institution || {})};
  const inv = roleSection(a).invitation || {};
  const contacts = roleSection(a).contacts || [];
  return h('div', {class: 'card', id: 'sales-section'},
    h('h3', {text: '机构与联系人（销售审核）'}),
    factsTable('institution', Object.keys(FIELD).map((k) => [FIELD[k], fieldText(k, inst[k]), k])),
    contacts.length ? h('p', {class: 'meta', id: 'contacts', text: contacts.map((c) =>
      `${c.role === 'legal_representative' ? '法定代表人' : '联系人'}：${c.name || '-'}${c.mobile ? ` ${c.mobile}` : ''}`).join(' · ')}) : null,
    inv.institution_name || inv.contact_name ? h('p', {class: 'meta', text:
      `邀请：${inv.institution_name || '-'} · ${inv.contact_name || '-'}${inv.created_by ? ` · 由 ${inv.created_by} 发出` : ''}`}) : null);
}

function blacklistLine(b) {
  if (!b || b.hit == null) {
    return h('p', {class: 'err', id: 'blacklist', text: `黑名单筛查未完成${b && b.error ? `（${b.error}）` : ''}：请重新筛查后再审核`});
  }
  return h('p', {id: 'blacklist'}, h('strong', {text: '黑名单：'}),
    h('span', {class: b.hit ? 'hit' : 'clear', text: b.hit ? '命中' : '未命中'}),
    h('span', {class: 'meta', text: ` · 方式：${METHOD[b.method] || b.method || '-'}` +
      `${isNum(b.queried) ? ` · 查询 ${b.queried} 项` : ''}${isNum(b.holder_size) ? ` · 名单 ${b.holder_size} 项` : ''}${b.at ? ` · ${when(b.at)}` : ''}`}),
    (b.matched_fields || []).length ? h('span', {class: 'hit', text: ` · 命中：${b.matched_fields.map((f) => FIELD[f] || f).join('、')}`}) : null);
}

function newsBlock(news) {
  if (!news || !news.length) return h('p', {class: 'meta', id: 'news-none', text: '负面舆情：未发现'});
  const bad = news.filter((n) => n.negative).length;
  return h('div', {id: 'news'}, h('p', {}, h('strong', {text: '舆情：'}), h('span', {class: bad ? 'hit' : '', text: `${news.length} 篇报道提及，其中负面 ${bad} 篇`})),
    news.map((n) => h('div', {class: 'news-hit'},
      h('div', {}, n.negative ? h('span', {class: 'badge kyc-rejected', text: '负面'}) : h('span', {class: 'badge', text: '提及'}),
        h('strong', {text: n.title || n.source || '报道'}),
        h('span', {class: 'meta', text: ` ${[`${label(SUBJECT, n.subject)}「${n.name || ''}」`, n.source, n.date,
          (n.adverse_terms || []).length ? `负面词：${n.adverse_terms.join('、')}` : null, isNum(n.mentions) ? `提及 ${n.mentions} 次` : null].filter(Boolean).join(' · ')}`})),
      h('div', {class: 'passage', text: n.passage || n.text || n.snippet || ''}))));
}

function docsBlock(list) {
  if (!list || !list.length) return h('p', {class: 'meta', id: 'docs-none', text: '没有上传文件'});
  return h('table', {id: 'documents'}, h('thead', {}, h('tr', {}, ['文件类型', '文件名', '大小', 'SHA-256', ''].map((t) => h('th', {text: t})))),
    h('tbody', {}, list.map((d) => {
      const did = d.document_id || d.id;
      return h('tr', {class: 'document', data: {kind: d.kind, id: did}},
        h('td', {text: label(DOC_KIND, d.kind)}), h('td', {text: d.filename}), h('td', {class: 'num', text: bytes(d.size)}),
        h('td', {class: 'hash sha', text: d.sha256}),
        h('td', {}, h('a', {href: d.url || `${base}/documents/${encodeURIComponent(did)}`, download: d.filename, class: 'doc-download', text: '下载'})));
    })));
}

function complianceBlock(a) {
  const sec = roleSection(a);
  const scr = sec.screening || a.screening || {};
  const rescreen = h('button', {type: 'button', class: 'plain', id: 'rescreen', text: '重新筛查'});
  rescreen.addEventListener('click', () => act(rescreen, `${base}/screen`, {}, '已重新筛查，报告已更新'));
  const rep = sec.report || a.report;
  return h('div', {class: 'card', id: 'compliance-section'},
    h('div', {class: 'actions toolbar'}, h('h3', {text: '筛查结果（合规审核）'}), a.state === 'compliance_review' ? rescreen : null),
    reachedCompliance(a) ? [blacklistLine(scr.blacklist), newsBlock(scr.negative_news)]
      : h('p', {class: 'meta', id: 'screening-none', text: '销售审核通过后自动筛查黑名单与负面舆情'}),
    h('h4', {text: '证明文件'}), docsBlock(sec.documents),
    h('h4', {text: '尽职调查报告'}),
    rep || reachedCompliance(a)
      ? h('p', {}, h('a', {class: 'button', id: 'report-html', href: (rep && rep.html_url) || `${base}/report`, target: '_blank', rel: 'noopener', text: '查看报告（网页）'}),
        h('a', {class: 'button', id: 'report-pdf', href: (rep && rep.pdf_url) || `${base}/report.pdf`, download: `尽调报告-${id}.pdf`, text: '下载报告（PDF）'}),
        rep ? h('span', {class: 'meta'}, `生成于 ${when(rep.generated_at)} · SHA-256 `, h('span', {class: 'hash', text: rep.sha256})) : null)
      : h('p', {class: 'meta', id: 'report-none', text: '销售审核通过后生成尽职调查报告'}));
}

function riskBlock(a) {
  const sec = roleSection(a);
  const inst = a.institution || {};
  const suit = sec.suitability || {};
  const proposed = sec.limits || a.limits || {};
  const keys = Object.keys(sec.limit_fields || LIMIT);
  return h('div', {class: 'card', id: 'risk-section'},
    h('h3', {text: '适当性与交易额度（风控审核）'}),
    factsTable('suitability', [['投资者类别', label(INVESTOR, sec.investor_category || inst.investor_category), 'investor_category'],
      ['适当性', suit.eligible == null ? '-' : suit.eligible ? '符合' : '不符合', 'eligible'], ['说明', suit.reason, 'reason'],
      ['注册资本（元）', money(Number(sec.registered_capital_cny ?? inst.registered_capital_cny)), 'registered_capital_cny']]),
    suit.eligible === false ? h('p', {class: 'err', text: '普通投资者不得参与场外衍生品交易：只能退回或拒绝。'}) : null,
    h('h4', {text: myTurn(a) ? '建议交易额度（随审核通过一并提交，可不填）' : '交易额度'}),
    h('div', {class: 'grid-form', id: 'limits'}, keys.map((k) => h('label', {}, LIMIT[k] || k,
      h('input', {class: 'limit', inputmode: 'numeric', data: {key: k}, value: proposed[k] ?? '', disabled: !myTurn(a)})))));
}

function adminBlock(a) {
  return h('div', {class: 'card', id: 'admin-section'}, h('h3', {text: '证明文件'}), docsBlock(roleSection(a).documents));
}

const METHOD = {'ecdh-psi': '隐私求交（PSI）', 'local-file': '本地名单', not_configured: '未配置名单'};

function limitsValue() {
  const out = {};
  document.querySelectorAll('#limits input.limit').forEach((i) => {
    const v = i.value.replace(/[,，\s]/g, '');
    if (v !== '') out[i.dataset.key] = Number.isFinite(Number(v)) ? Number(v) : v;
  });
  return Object.keys(out).length ? out : null;
}

// ---- actions ---------------------------------------------------------------------------------------------
/** POST JSON; a refusal throws with the server's reason and its per-field reasons (the 422's `fields`). */
async function post(path, body) {
  const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  if (r.status === 401) { location.href = '/login'; throw new Error('login'); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const fields = data.fields || (data.detail && data.detail.fields) || {};
    const lead = {403: '无权操作', 409: '当前状态不允许', 422: '填写有误'}[r.status] || `失败（${r.status}）`;
    throw new Error([`${lead}：${data.error || r.statusText}`, ...Object.entries(fields).map(([k, v]) => `${LIMIT[k.replace(/^limits\./, '')] || k}：${v}`)].join('；'));
  }
  return data;
}

async function act(btn, path, body, done) {
  say('err', ''); say('ok', '');
  btn.disabled = true;
  try {
    const res = await post(path, body);
    document.querySelectorAll('#comment, #transition-comment').forEach((i) => { i.value = ''; });
    if (res && res.id && res.state) render(res); else await load();
    say('ok', done);
  } catch (ex) {
    say('err', `未完成：${ex.message}`);
    btn.disabled = false;
  }
}

function decisionBlock(a) {
  const comment = h('textarea', {id: 'comment', class: 'comment', maxlength: 2000, placeholder: '审核意见（退回或拒绝时必填，退回意见会显示给客户）'});
  const btn = (cls, decision, text) => {
    const b = h('button', {type: 'button', class: cls, id: `decide-${decision}`, data: {decision}, text});
    b.addEventListener('click', () => {
      const c = comment.value.trim();
      if (decision !== 'approve' && !c) { say('err', `${text}须填写审核意见`); comment.focus(); return; }
      const body = {decision, comment: c};
      if (me.role === 'risk' && decision === 'approve') { const l = limitsValue(); if (l) body.limits = l; }
      act(b, `${base}/decision`, body, `已${text}`);
    });
    return b;
  };
  return h('div', {class: 'card', id: 'decision'},
    h('h3', {text: `您的审核决定（${label(KYC_STATE, a.state)}）`}), comment,
    h('div', {class: 'actions'}, btn('approve', 'approve', '通过'), btn('plain', 'return', '退回客户补正'), btn('reject', 'reject', '拒绝')));
}

function transitionsBlock(a) {
  const mineT = TRIGGERS.filter((t) => t.from.includes(a.state) && t.roles.includes(me.role));
  if (!mineT.length) return null;
  const comment = h('input', {id: 'transition-comment', placeholder: '原因（必填）', maxlength: 500});
  return h('div', {class: 'card', id: 'transitions'}, h('h3', {text: '状态管理'}),
    h('div', {class: 'actions'}, comment, mineT.map((t) => {
      const b = h('button', {type: 'button', class: t.trigger === 'suspend' ? 'reject' : 'plain', id: `trigger-${t.trigger}`, text: t.text});
      b.addEventListener('click', () => {
        if (!comment.value.trim()) { say('err', `${t.text}须填写原因`); comment.focus(); return; }
        act(b, `${base}/transition`, {trigger: t.trigger, comment: comment.value.trim()}, `已${t.text}`);
      });
      return b;
    })));
}

// sales: a fresh client link where the client must act (returned, signing) or after a periodic review; the old
// link stops working; the new one is shown once
function reissueBlock(a) {
  if (!['sales', 'admin'].includes(me.role) || !a.invitation_id || ['approved', 'rejected'].includes(a.state)) return null;
  const once = h('div', {id: 'reissue-once'});
  const b = h('button', {type: 'button', class: 'plain', id: 'reissue', text: '重新发放客户链接'});
  b.addEventListener('click', async () => {
    if (!confirm('重新发放后，客户手中的旧链接立即失效，确定重新发放？')) return;
    say('err', ''); say('ok', '');
    try {
      const inv = await post(`/api/kyc/invitations/${encodeURIComponent(a.invitation_id)}/reissue`, {});
      fill(once, h('div', {class: 'once'}, h('p', {}, h('strong', {text: '客户的新链接（旧链接已失效）'}), `（有效期至 ${when(inv.expires_at)}）`),
        h('input', {id: 'reissue-url', readonly: true, value: inv.url}),
        h('p', {class: 'meta', text: '此链接只显示这一次；请通过安全渠道发给客户联系人本人。'})));
    } catch (ex) {
      say('err', `未完成：${ex.message}`);
    }
  });
  return h('div', {class: 'card', id: 'reissue-card'}, h('h3', {text: '客户链接'}),
    h('p', {class: 'meta', text: a.awaiting_role === 'client' ? '等待客户操作：链接过期或遗失时可重新发放。' : '客户需要再次操作时（退回补正、重新签署）发放新链接。'}),
    h('div', {class: 'actions'}, b), once);
}

function groupBlock(a) {
  if (me.role !== 'sales' || a.state !== 'approved' || !a.institution_id) return null;
  const group = h('input', {id: 'group', placeholder: '群 ID（企业微信/微信群）', maxlength: 200});
  const channel = h('select', {id: 'channel'}, h('option', {value: '', text: '微信群（默认）'}),
    h('option', {value: 'wecom', text: '企业微信'}), h('option', {value: 'sim', text: '模拟群'}));
  const b = h('button', {type: 'button', class: 'approve', id: 'bind', text: '绑定询价群'});
  const bound = (roleSection(a).groups || []).map((g) => (typeof g === 'string' ? g : `${g.group}${g.channel ? `（${g.channel}）` : ''}`));
  b.addEventListener('click', async () => {
    if (!group.value.trim()) { say('err', '请填写群 ID'); return; }
    const body = {group: group.value.trim()};
    if (channel.value) body.channel = channel.value;
    b.disabled = true;
    say('err', '');
    try {
      await post(`/api/kyc/institutions/${encodeURIComponent(a.institution_id)}/groups`, body);
      say('ok', `已绑定询价群 ${body.group}：该群的询价将按此机构报价`);
      group.value = '';
      await load();
    } catch (ex) { say('err', `绑定失败：${ex.message}`); }
    b.disabled = false;
  });
  return h('div', {class: 'card', id: 'groups'}, h('h3', {text: '询价群绑定'}),
    bound.length ? h('p', {class: 'meta', id: 'bound', text: `已绑定：${bound.join('、')}`}) : null,
    h('div', {class: 'actions'}, group, channel, b));
}

function agreementBlock(a) {
  const ag = a.agreement || {};
  if (!ag.signed) return null;
  return h('div', {class: 'card', id: 'agreement'}, h('h3', {text: '已签署协议'}),
    h('p', {}, h('a', {class: 'button', id: 'agreement-pdf', href: `${base}/agreement.pdf`, download: `协议-${id}.pdf`, text: '下载已签署协议（PDF）'}),
      h('span', {class: 'meta'}, 'SHA-256 ', h('span', {class: 'hash', id: 'agreement-sha', text: ag.sha256 || '-'}),
        ag.signed_at ? ` · ${when(ag.signed_at)}` : '')));
}

function historyBlock(a) {
  const rows = (a.history || []).map((s) => h('tr', {class: 'step'},
    h('td', {text: `${label(KYC_STATE, s.from) === '-' ? '（新建）' : label(KYC_STATE, s.from)} → ${label(KYC_STATE, s.to)}`}),
    h('td', {text: `${s.by || '-'}${s.role ? `（${label(KYC_ROLE, s.role)}）` : ''}`}), h('td', {text: when(s.at)}),
    h('td', {class: 'comment', text: s.comment || ''})));
  return h('div', {class: 'card', id: 'history'}, h('h3', {text: '审核记录'}),
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, ['状态', '人员', '时间', '意见'].map((t) => h('th', {text: t})))), h('tbody', {}, rows))
      : h('p', {class: 'meta', text: '尚无记录'}));
}

function render(a) {
  // what the user typed survives a refetch: comments, group, limits
  const typed = [...document.querySelectorAll('#page textarea, #page input[id], #limits input.limit')]
    .map((i) => [i.id ? `#${i.id}` : `#limits input[data-key="${i.dataset.key}"]`, i.value]).filter(([, v]) => v);
  app = a;
  const inst = a.institution || {};
  const turn = myTurn(a);
  const section = {sales: salesBlock, compliance: complianceBlock, risk: riskBlock, admin: adminBlock}[me.role];
  document.title = `otcdesk 准入审核 · ${inst.name || a.institution_name || id}`;
  fill($('page'),
    h('div', {class: 'card', id: 'summary'},
      h('h3', {}, kycBadge(a.state), h('span', {id: 'inst-name', text: inst.name || a.institution_name || '-'})),
      h('p', {class: 'meta'}, `申请编号 ${a.id} · 当前处理：`,
        h('span', {id: 'awaiting', class: turn ? 'turn' : '', text: a.awaiting_role ? label(KYC_ROLE, a.awaiting_role) : '无（流程已结束）'}),
        isNum(a.waiting_s) ? ` · 已等待 ${waited(a.waiting_s)}` : '', a.updated_at ? ` · 更新于 ${when(a.updated_at)}` : ''),
      turn ? h('p', {class: 'turn', id: 'your-turn', text: '轮到您审核。'})
        : REVIEW.includes(a.state) ? h('p', {class: 'meta', id: 'not-your-turn', text: `正在等待${label(KYC_ROLE, a.awaiting_role)}审核，您无需操作。`}) : null,
      h('div', {class: 'err', id: 'action-err', role: 'alert', text: said.err}), h('div', {class: 'ok', id: 'action-ok', role: 'status', text: said.ok})),
    section ? section(a) : null,
    turn ? decisionBlock(a) : null,
    transitionsBlock(a), reissueBlock(a), groupBlock(a), agreementBlock(a), historyBlock(a));
  for (const [sel, v] of typed) { const i = document.querySelector(sel); if (i && !i.disabled) i.value = v; }
}

async function load() {
  render(await api(base));
}

(async () => {
  me = await whoami();
  if (!READERS.includes(me.role)) { denied($('page'), `准入审核仅限销售、合规、风控与管理员（当前角色：${label(ROLE, me.role)}）`); return; }
  if (!id) { denied($('page'), '缺少申请编号：请从准入申请列表打开'); return; }
  const reload = () => load().catch((ex) => denied($('page'), `加载失败：${ex.message}`));
  await reload();
  const typing = () => document.activeElement && /TEXTAREA|INPUT|SELECT/.test(document.activeElement.tagName);
  live(['kyc', 'onboarding'], () => { if (!typing()) reload(); }, () => { if (!typing()) reload(); });
})();
