const chat = document.getElementById('chat'), group = document.getElementById('group');
async function load() {
  const r = await fetch(`/api/sim/groups/${encodeURIComponent(group.value)}/messages`); const msgs = await r.json();
  chat.innerHTML = msgs.map((m) => `<div class="msg ${m.from_bot ? 'bot' : ''}"><div class="from">${esc(m.sender)} · ${new Date(m.ts).toLocaleTimeString()}</div>${esc(m.text)}</div>`).join('');
  chat.scrollTop = chat.scrollHeight;
}
document.getElementById('say').addEventListener('submit', async (e) => {
  e.preventDefault(); const text = document.getElementById('text');
  await fetch(`/api/sim/groups/${encodeURIComponent(group.value)}/messages`, {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({sender: document.getElementById('sender').value, text: text.value})});
  text.value = ''; load();
});
group.addEventListener('change', load);
const es = new EventSource('/api/events'); es.addEventListener('sim', (ev) => { if (JSON.parse(ev.data).group === group.value) load(); });
load();
