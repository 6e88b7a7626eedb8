"""otcdesk: quote requests from clients' chat groups to trader-approved replies, and the desk's day after.

One import namespace for the whole project (no generic top-level names in site-packages):

- `otcdesk.bots`            channel adapters (simulator, WeChat via wechaty)
- `otcdesk.agents`          langgraph graphs (the desk graph) and reply drafting
- `otcdesk.ner`             quote-request understanding: lexicon, CRF, rules (a library, no I/O)
- `otcdesk.pricing_engine`  products as data, market, models, engines, Greeks, solvers, book
- `otcdesk.knowledge`       RAG over the firm's documents (ingest and answer pipelines, QA, evaluation)
- `otcdesk.workflows`       state machines and schedules (review queue, ...)
- `otcdesk.app`             the composition root: settings, repositories, the desk core (inbound pipeline,
                            runner, review service, outbox), HTTP API, console, CLI
"""
