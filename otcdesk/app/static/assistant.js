document.getElementById('ask').addEventListener('submit', async (e) => {
  e.preventDefault();
  const box = document.getElementById('answer'); box.hidden = false; box.textContent = '检索中…';
  try {
    const a = await api('/api/kb/ask', {method: 'POST', body: JSON.stringify({question: q.value, kb: kb.value})});
    box.innerHTML = `<h3>${a.refused ? '无法回答' : '回答'}</h3><p id="answer-text">${esc(a.answer)}</p>`;
    document.getElementById('cites').innerHTML = (a.citations || []).map((c, i) =>
      `<div class="card cite" data-id="${esc(c.chunk_id || '')}"><div class="meta">[${i + 1}] ${esc(c.source)} ${esc(c.heading || '')} · score ${Number(c.score).toFixed(2)}
       ${c.chunk_id ? '<a href="#" class="open">打开原文</a>' : ''}</div>${esc(c.text)}</div>`).join('');
  } catch (ex) { box.textContent = ex.message; }
});
document.getElementById('cites').addEventListener('click', async (e) => {
  if (!e.target.classList.contains('open')) return; e.preventDefault();
  const id = e.target.closest('.cite').dataset.id, p = await api(`/api/kb/${encodeURIComponent(kb.value)}/passages/${encodeURIComponent(id)}`);
  const box = document.getElementById('passage'); box.hidden = false;
  box.innerHTML = `<h3>${esc(p.source)} · ${esc(p.heading)}</h3><p class="passage-text">${esc(p.text)}</p>`;
});
api('/api/me').then((me) => { document.getElementById('who').textContent = `${me.user}（${me.role}）`; });
