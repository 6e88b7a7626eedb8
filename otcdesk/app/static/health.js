/* The channels' health panel (console.html, channels.html): GET /api/channels every 5 s into #channel-health,
   one row per channel: connected or not and since when, the last client message, the last error. Text nodes only. */
(() => {
  const NAME = {sim: '群聊模拟器', wechat: '微信群（wechaty）', wecom: '企业微信'};
  const at = (iso) => (iso ? new Date(iso).toLocaleString('zh-CN', {hour12: false, timeZone: 'Asia/Shanghai'}) : '-');
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text != null) n.textContent = text; if (cls) n.className = cls; return n; };
  function row(c) {
    const tr = el('tr'); tr.dataset.channel = c.channel; tr.dataset.connected = String(c.connected);
    const state = el('td', c.connected ? '已连接' : '已断开', c.connected ? 'ok state' : 'err state');
    const retry = !c.connected && c.retry_in_s != null ? `，${c.retry_in_s} 秒后重连` : '';
    tr.append(el('td', NAME[c.channel] || c.channel), state, el('td', `${at(c.since)}${retry}`, 'meta'),
      el('td', at(c.last_message_at), 'last-message'), el('td', c.last_error ? `${c.last_error}（${at(c.last_error_at)}）` : '-',
        c.last_error ? 'err last-error' : 'meta last-error'), el('td', String(c.reconnects || 0), 'num'));
    return tr;
  }
  async function refresh(box) {
    const body = box.querySelector('tbody');
    try {
      const r = await fetch('/api/channels');
      if (!r.ok) throw new Error((await r.json()).error || r.statusText);
      body.replaceChildren(...(await r.json()).map(row));
      box.dataset.loaded = 'true';
    } catch (ex) { body.replaceChildren(el('tr', null)); body.firstChild.append(el('td', `渠道状态不可用：${ex.message}`, 'err')); }
  }
  document.addEventListener('DOMContentLoaded', () => {
    const box = document.getElementById('channel-health');
    if (!box) return;
    refresh(box);
    setInterval(() => refresh(box), 5000);
  });
})();
