"""The desk core: what carries a client's message from a channel through the desk graph to a sent reply.

- `inbound.py`  the inbound pipeline: middleware (store first / de-duplicate, audit, rate limit per group)
                ending in the runner
- `runner.py`   DeskRunner: hosts the langgraph desk graph (`agents.desk`); starts, resumes and recovers runs,
                one run per graph thread at a time
- `ports.py`    the graph's narrow services over the repositories: conversation context, KYC lookup, parser
- `reviews.py`  ReviewOpener (the graph opens items) and ReviewService (trader decisions, expiry, reprice)
- `outbox.py`   OutboxDispatcher: enqueues approved replies and delivers each once through its channel

Tables are touched only by `app.repositories`; who builds what is `app.wiring`.
"""
