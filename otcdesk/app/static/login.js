document.getElementById('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await fetch('/api/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({username: username.value, password: password.value})});
  if (r.ok) { location.href = '/console'; } else { document.getElementById('err').textContent = (await r.json()).error; }
});
