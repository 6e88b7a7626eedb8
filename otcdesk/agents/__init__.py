"""otcdesk.agents: langgraph graphs and what they draft.

- `desk.py`        the desk graph (understand → KYC → price or orders → draft → review interrupt → deliver, which
                   books approved orders and unwinds through `TradingPort`), built by
                   `build_desk_graph(deps, checkpointer)` from narrow services (`DeskDeps`); hosted by
                   `app.desk.runner`
- `quote_card.py`  reply drafts: the quote card, the clarifying question, the onboarding notice, and the order,
                   status, holdings and unwind replies
"""
