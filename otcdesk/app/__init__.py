"""otcdesk.app: the composition root — settings, database, the desk core, HTTP API and console, the CLI.

- `wiring.py`        who builds what: `build_desk` (the desk core) and `open_process` (all `otcdesk serve` runs)
- `desk/`            the desk core: inbound middleware pipeline, runner hosting the desk graph, review service,
                     outbox dispatcher, the graph's narrow services (see its `__init__`)
- `repositories/`    the only code that touches the tables, one repository per aggregate
- `models.py`        the table declarations; `db.py` engine, `init_db` and `unit_of_work`
- `checkpoints.py`   the langgraph checkpointer (SQLite file or PostgreSQL)
- `server.py`        aiohttp: JSON API of CONTRACTS.md, console, simulator, the desk's worker loops
- `http_security.py` the HTTP edge: cross-site refusal, JSON body checks, security headers, Secure cookies
- `static/`          the console's pages, style and scripts (`console.js` for the review queue)
- `auth.py`          passwords and login sessions; `roles.py` the console roles
- `logins.py`        login throttle (delays, lockouts per user and address) and the bounded password pool
- `events.py`        in-process event bus (console live updates, worker wake-ups) and who may read each event
- `quoting.py`       prices a parsed request on the market snapshot (`market.py`)
- `assistant.py`     knowledge bases for the internal assistant; `vault.py` masked personal data
- `llm.py`           the optional OpenAI-compatible client; `demo.py` demo-mode seed data
- `settings.py`      the only reader of environment variables
- `cli.py`, `commands/`  the `otcdesk` command line
"""
