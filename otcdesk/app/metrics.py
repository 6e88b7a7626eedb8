"""The desk's Prometheus metrics: every family in one place, on a registry of its own per desk.

`GET /metrics` (`routes/metrics.py`) exposes `Metrics.registry` in the text format. Each `Desk` owns one
`Metrics` (so several apps in one process, as in the tests, never share counters); the code where an event
happens counts it:

| family                                   | labels              | counted by                                   |
| ---------------------------------------- | ------------------- | -------------------------------------------- |
| `otcdesk_inbound_messages_total`         | channel             | inbound pipeline (`CountInbound`), new only   |
| `otcdesk_inbound_duplicates_total`       | channel             | the same, platform redeliveries (dropped)     |
| `otcdesk_inbound_held_total`             | channel             | `CanaryAllowlist`: stored, no drafts (canary) |
| `otcdesk_channel_connected`              | channel             | gauge, 1 while connected (`ChannelHealth`)    |
| `otcdesk_review_items_opened_total`      | kind                | `ReviewOpener`                                |
| `otcdesk_review_decisions_total`         | kind, decision      | `ReviewService` (approved, edited, rejected, expired) |
| `otcdesk_message_to_review_seconds`      | kind                | `ReviewOpener`: message stored → item opened  |
| `otcdesk_outbox_sends_total`             | channel, result     | `OutboxDispatcher` (sent, failed, unconfirmed) |
| `otcdesk_llm_calls_total`                | model, outcome      | `LLMClient` (ok, timeout, connection, response) |
| `otcdesk_llm_fallbacks_total`            | reason              | `LLMClient`: a failed call; every caller then falls back to its deterministic path |
| `otcdesk_llm_call_seconds`               | model               | `LLMClient`                                   |
| `otcdesk_llm_tokens_total`               | model, type         | `LLMClient` (prompt, completion)              |
| `otcdesk_risk_refresh_seconds`           | kind                | `RiskService` (refresh, fold_in)              |
| `otcdesk_security_events_total`          | kind                | e.g. a WeCom callback with a bad signature    |
| `otcdesk_leader`                         |                     | `app.leader.Leadership`: 1 while this instance runs the scheduler and outbox |
"""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0, 120.0)
RISK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The families of the module docstring on `self.registry`."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.inbound = Counter("otcdesk_inbound_messages", "Client messages stored (new, not redeliveries)",
                               ["channel"], registry=r)
        self.inbound_duplicates = Counter("otcdesk_inbound_duplicates",
                                          "Platform redeliveries of a stored message, dropped", ["channel"], registry=r)
        self.inbound_held = Counter("otcdesk_inbound_held", "Stored messages of groups outside the canary allowlist",
                                    ["channel"], registry=r)
        self.channel_connected = Gauge("otcdesk_channel_connected", "1 while the channel is connected, else 0",
                                       ["channel"], registry=r)
        self.review_opened = Counter("otcdesk_review_items_opened", "Review items put before a trader", ["kind"],
                                     registry=r)
        self.review_decisions = Counter("otcdesk_review_decisions", "Review items decided",
                                        ["kind", "decision"], registry=r)
        self.review_latency = Histogram("otcdesk_message_to_review_seconds",
                                        "From a client message stored to its review item opened", ["kind"],
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.outbox_sends = Counter("otcdesk_outbox_sends", "Replies the outbox tried to deliver",
                                    ["channel", "result"], registry=r)
        self.llm_calls = Counter("otcdesk_llm_calls", "Chat completions asked of the LLM", ["model", "outcome"],
                                 registry=r)
        self.llm_fallbacks = Counter("otcdesk_llm_fallbacks",
                                     "Failed LLM calls, after which the caller used its deterministic path",
                                     ["reason"], registry=r)
        self.llm_latency = Histogram("otcdesk_llm_call_seconds", "LLM chat completion latency", ["model"],
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.llm_tokens = Counter("otcdesk_llm_tokens", "LLM tokens used", ["model", "type"], registry=r)
        self.risk_refresh = Histogram("otcdesk_risk_refresh_seconds", "Risk book revaluation duration", ["kind"],
                                      buckets=RISK_BUCKETS, registry=r)
        self.security_events = Counter("otcdesk_security_events", "Refused requests worth a look", ["kind"],
                                       registry=r)
        self.leader = Gauge("otcdesk_leader", "1 while this instance runs the single-instance jobs (risk "
                            "scheduler, outbox), 0 on a standby", registry=r)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class CountInbound:
    """Inbound middleware (first of the intake): counts stored messages and dropped redeliveries per channel."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def __call__(self, handler, event, data):
        result = handler(event, data)
        family = self.metrics.inbound if data.get("new") else self.metrics.inbound_duplicates
        family.labels(channel=event.channel).inc()
        return result
