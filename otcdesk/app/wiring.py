"""The composition root: who builds what, in one place.

`build_desk` assembles the desk core on one database: the graph's narrow services (`app.desk.ports`,
the review queue, the outbox), the desk graph (`agents.desk`) and its checkpointer, the runner, the
review service and the inbound pipeline. Tests build it directly (passing their own `parse` or `price`
where they need one); `open_process` adds what `otcdesk serve` needs around it (schema, demo seed, channels,
the assistant's knowledge hub and agent) and is all the HTTP server calls.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy.engine import Engine

from otcdesk.agents.desk import DeskDeps, OrderPolicy, build_desk_graph
from otcdesk.app.checkpoints import make_checkpointer
from otcdesk.app.clock import Clock
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.desk.canary import CanaryAllowlist, CanaryPolicy
from otcdesk.app.desk.inbound import AuditReceived, InboundPipeline, RateLimit, StoreFirst
from otcdesk.app.desk.outbox import OutboxDispatcher
from otcdesk.app.desk.ports import ConversationStore, OrderStore, kyc_lookup, message_parser
from otcdesk.app.desk.reviews import ReviewOpener, ReviewService
from otcdesk.app.desk.runner import DeskRunner, thread_for
from otcdesk.app.events import EventBus
from otcdesk.app.market import market_for
from otcdesk.app.metrics import CountInbound, Metrics
from otcdesk.app.quoting import quote_request, with_pretrade
from otcdesk.app.trading.vol_surfaces import VolSurfaceStore
from otcdesk.app.settings import Settings
from otcdesk.app.tracing import Tracing
from otcdesk.app.trading.booking import TradeService
from otcdesk.app.trading.lifecycle import FixingService
from otcdesk.app.trading.margins import MarginPolicy
from otcdesk.app.trading.market_data import MarketDataService
from otcdesk.app.trading.risk import RiskService
from otcdesk.app.trading.templates import TemplateService
from otcdesk.bots.base import Channel

log = logging.getLogger(__name__)


@dataclass
class Desk:
    """The desk core of one process. Channels deliver into `inbound`; the server's workers call `run_inbound`,
    `outbox.dispatch` and `reviews.expire_due`; the console calls `reviews`."""

    engine: Engine
    events: EventBus
    runner: DeskRunner
    reviews: ReviewService
    outbox: OutboxDispatcher
    inbound: InboundPipeline
    rate_limit: RateLimit
    parse: Callable[[str, dict | None], dict]
    price: Callable[[dict], dict]
    llm: Any = None
    opener: Any = None  # desk.reviews.ReviewOpener: services open notices through it
    clock: Any = None  # app.clock.Clock
    trades: Any = None  # trading.booking.TradeService
    market: Any = None  # trading.market_data.MarketDataService
    fixings: Any = None  # trading.lifecycle.FixingService
    risk: Any = None  # trading.risk.RiskService
    margins: Any = None  # trading.margins.MarginPolicy
    kyc: Any = None  # kyc.service.KycService
    templates: Any = None  # trading.templates.TemplateService
    surveillance: Any = None  # surveillance.SurveillanceService
    metrics: Metrics = field(default_factory=Metrics)  # GET /metrics
    tracing: Tracing = field(default_factory=Tracing.off)
    hub: Any = None  # app.assistant.KnowledgeHub (the client knowledge base is `settings.client_kb`)
    canary: Any = None  # desk.canary.CanaryPolicy: the canary allowlist the inbound pipeline reads

    def connect(self, channel: Channel) -> Channel:
        """Send approved replies of `channel.name` through `channel` (which delivers into `self.inbound`); its
        connected state feeds the `otcdesk_channel_connected` gauge."""
        self.outbox.register(channel)
        gauge = self.metrics.channel_connected.labels(channel=channel.name)
        channel.health.on_change = lambda connected: gauge.set(1 if connected else 0)
        gauge.set(1 if channel.health.connected else 0)
        return channel

    def channel_health(self) -> list[dict]:
        """Each connected channel's health (`bots.base.ChannelHealth.snapshot`), by name."""
        return [self.outbox.channels[name].health.snapshot() for name in sorted(self.outbox.channels)]

    def run_inbound(self) -> float | None:
        """One pass of the inbound worker: hand on the messages the rate limit now lets through, then run every
        queued message; returns the seconds until a held-back message may go on (None when none waits)."""
        self.rate_limit.release_due()
        self.runner.drain()
        return self.rate_limit.next_release_s()

    def warm_up(self, mc_kernel: bool = True) -> None:
        """Load the parser's dictionaries, the calendar and the engines before the first client message; compile the
        fused Monte Carlo kernel (a minute cold, a disk-cache load after) in the background. Quotes never wait for
        it: until it is compiled they price on the reference kernel (`mc_engine.fused_unusable`)."""
        if mc_kernel:
            threading.Thread(target=_warm_mc_kernel, name="mc-kernel-warm-up", daemon=True).start()
        for req in self.parse("沪深300 1个月 平值看跌", None).get("requests", []):
            self.price(req)

    def close(self, timeout: float = 60.0) -> None:
        """Wait for graph runs in flight, then close the checkpointer (and the risk book's scheduler and worker)."""
        self.runner.close(timeout)
        if self.risk is not None:
            self.risk.stop()
        self.tracing.shutdown()


def _warm_mc_kernel() -> None:
    from otcdesk.pricing_engine import mc_fused

    try:
        log.info("fused Monte Carlo kernel ready: %s", mc_fused.warm_up())
    except Exception:  # logged, not fatal: a quote that needs the kernel then reports its own error
        log.exception("fused Monte Carlo kernel warm-up failed")


def build_desk(settings: Settings, engine: Engine, events: EventBus | None = None, *, llm: Any = None,
               parse: Callable[[str, dict | None], dict] | None = None,
               price: Callable[[dict], dict] | None = None, trading: Any = None, kyc: Any = None,
               hub: Any = None, demo: bool = False, metrics: Metrics | None = None,
               tracing: Tracing | None = None) -> Desk:
    """The desk core on `engine`; `parse` defaults to `otcdesk.ner`, `price` to the desk's quote on the market
    snapshot (fair value through the margin table, `trading.margins`); `trading` (`agents.desk.TradingPort`)
    books approved orders and unwinds, by default the trade service (`trading.booking.TradeService`); `kyc`
    onboards clients, by default `kyc.service.KycService` with the real screener, report and agreement signer
    (`demo`: the screener's demo list); `hub` (`app.assistant.KnowledgeHub`, built here by default) answers clients'
    knowledge questions from `settings.client_kb`. `metrics` (a fresh registry by default) and `tracing` (from
    the settings: OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else off) observe the desk and `llm`."""
    events = events or EventBus()
    metrics = metrics or Metrics()
    tracing = tracing or Tracing.from_settings(settings)
    if llm is not None and hasattr(llm, "instrument"):
        llm.instrument(metrics, tracing)
    templates = TemplateService(engine, settings.data_dir / "templates")
    templates.sync()
    parse = _after(templates.sync, parse or message_parser(llm))  # templates stored by any process are known first
    margins = MarginPolicy(engine)
    clock = Clock(settings.now)
    market = MarketDataService(engine, clock, surfaces=VolSurfaceStore(settings.data_dir))
    risk = RiskService(engine, events, clock, market.latest, backend=settings.backend,
                       ray_address=settings.ray_address, worker_process=settings.risk_worker_process, metrics=metrics)
    price = _after(templates.sync, price or (lambda req: with_pretrade(  # the desk's quote on the newest market,
        quote_request(req, margins, snapshot=market.latest(), valuation_date=clock.today()), risk)))  # limits checked
    outbox = OutboxDispatcher(engine, events, metrics=metrics, tracing=tracing)
    opener = ReviewOpener(engine, events, settings.review_ttl_s, metrics=metrics)
    trading = trading or TradeService(engine, events, outbox, clock, four_eyes_notional=settings.four_eyes_notional,
                                      quote_valid_s=settings.quote_valid_s, data_dir=settings.data_dir,
                                      market=lambda underlying: market_for(underlying, market.latest()),
                                      unwind_margin=margins.unwind_margin_pct, cjk_font=settings.cjk_font,
                                      on_live=risk.fold_in_soon, on_unwound=lambda tid: risk.refresh_soon())
    if hub is None:
        from otcdesk.app.assistant import KnowledgeHub
        from otcdesk.app.llm import build_embedder

        hub = KnowledgeHub(settings, engine, llm=llm, embedder=build_embedder(settings))
    client_kb = settings.client_kb
    deps = DeskDeps(parse=parse, context=ConversationStore(engine), kyc_status=kyc_lookup(engine), price=price,
                    reviews=opener, outbox=outbox, orders=OrderStore(engine, events), trading=trading,
                    policy=OrderPolicy(settings.max_order_notional, settings.quote_valid_s),
                    knowledge=lambda question: hub.ask(client_kb, question))
    checkpointer, close_checkpointer = make_checkpointer(settings)
    runner = DeskRunner(engine, build_desk_graph(deps, checkpointer, wrap=tracing.node), close_checkpointer,
                        wake=lambda: events.wake("inbound"), tracing=tracing)
    rate_limit = RateLimit(engine, settings.inbound_rate_limit, settings.inbound_rate_window_s)
    inbound = InboundPipeline(engine, intake=[CountInbound(metrics), StoreFirst(), AuditReceived(),
                                              CanaryAllowlist(metrics)],
                              middlewares=[rate_limit],
                              handler=lambda event, data: runner.submit(data["inbound_id"]),
                              log_ids=lambda event: runner.log_ids(thread_for(
                                  {"channel": event.channel, "platform_msg_id": event.platform_msg_id})))
    reviews = ReviewService(engine, runner, events, refusal=getattr(trading, "refusal", None), metrics=metrics,
                            tracing=tracing)
    kyc = kyc or build_kyc(settings, engine, clock, events, demo=demo)
    from otcdesk.app.surveillance import SurveillanceService

    return Desk(engine=engine, events=events, runner=runner, reviews=reviews,
                outbox=outbox, inbound=inbound, rate_limit=rate_limit, parse=parse, price=price, llm=llm,
                opener=opener, clock=clock, margins=margins, market=market,
                fixings=FixingService(engine, opener, clock, market,
                                      on_change=lambda tid: _trade_changed(trading, risk, tid)),
                trades=trading, risk=risk, kyc=kyc, hub=hub, templates=templates, canary=CanaryPolicy(engine),
                surveillance=SurveillanceService(engine, settings.surveillance_dir), metrics=metrics, tracing=tracing)


def _after(first: Callable[[], Any], fn: Callable) -> Callable:
    """`fn`, calling `first()` before each call."""
    def call(*args, **kw):
        first()
        return fn(*args, **kw)
    return call


def build_kyc(settings: Settings, engine: Engine, clock: Clock, events: EventBus | None = None, *,
              demo: bool = False):
    """The onboarding service with its real collaborators: the blacklist screener (PSI against
    `blacklist_endpoint`, or `blacklist_file`; negative news from `news_dir`), the due-diligence report, the
    agreement and the desk's e-seal (loaded on first use)."""
    from otcdesk.app.kyc import agreement, report
    from otcdesk.app.kyc.eseal import load_eseal
    from otcdesk.app.kyc.screening import Screener
    from otcdesk.app.kyc.service import KycService

    return KycService(engine, settings, clock, screener=Screener.from_settings(settings, demo=demo), reports=report,
                      agreements=agreement, eseal=lambda: load_eseal(settings), events=events)


def _trade_changed(trading: Any, risk: Any, trade_id: str) -> None:
    """A fixing changed a trade: the console hears of it, and the risk book revalues without its old figures."""
    if hasattr(trading, "announce"):
        trading.announce(trade_id)
    risk.refresh_soon()


@dataclass
class DeskProcess:
    """Everything one `otcdesk serve` process runs besides HTTP: the desk, its channels, the knowledge hub, the
    internal assistant."""

    desk: Desk
    sim: Any  # bots.simulator.SimulatorChannel
    hub: Any  # app.assistant.KnowledgeHub
    wechat: Any = None  # bots.wechaty_channel.WechatyChannel when a puppet service token is set
    wecom: Any = None  # bots.wecom.WeComChannel when the WeCom callback is configured
    demo_logins: dict = field(default_factory=dict)
    assistant: Any = None  # app.assistant_chat.AssistantChat: the internal assistant's agent over the desk's tools

    def close(self) -> None:
        if self.assistant is not None:
            self.assistant.close()
        self.desk.close()
        self.desk.engine.dispose()


async def open_process(settings: Settings, events: EventBus, *, demo: bool) -> DeskProcess:
    """Migrate and (in demo mode) seed the database, build the desk and its channels, recover unfinished work
    (and deliver again what the simulator recorded but the desk never stored)."""
    from otcdesk.app.assistant_chat import build_assistant
    from otcdesk.app.auth import purge_expired_sessions
    from otcdesk.app.llm import build_llm_client
    from otcdesk.app.repositories.sim import SqlSimTranscript
    from otcdesk.bots.simulator import SimulatorChannel

    settings.ensure_dirs()
    if demo and settings.surveillance_dir is None:
        from otcdesk.app.demo import surveillance_sample

        settings = settings.model_copy(update={"surveillance_dir": await asyncio.to_thread(
            surveillance_sample, settings.data_dir / "surveillance_demo")})
    engine = make_engine(settings.db_url)
    await asyncio.to_thread(init_db, engine)
    await asyncio.to_thread(purge_expired_sessions, engine)
    logins: dict = {}
    if demo:
        from otcdesk.app.demo import demo_logins, seed_demo

        await asyncio.to_thread(seed_demo, engine)
        logins = await asyncio.to_thread(demo_logins, engine)
    llm = build_llm_client(settings)
    desk = build_desk(settings, engine, events, llm=llm, demo=demo)
    if demo:
        from otcdesk.app.demo import seed_sample_book, seed_surveillance

        if added := await asyncio.to_thread(seed_sample_book, engine, desk.clock.today(), desk.market.latest()):
            log.info("demo: a generated sample book of %d live trades was booked (booked_by demo-seed)", added)
        if ran := await asyncio.to_thread(seed_surveillance, desk.surveillance):
            log.info("demo: surveillance over the simulated sample set: %d alerts", ran["found"])
    transcript = SqlSimTranscript(engine, on_append=lambda group: events.publish("sim", {"group": group}))
    sim = desk.connect(SimulatorChannel(transcript, desk.inbound))
    wechat = None
    if settings.wechaty_puppet_service_token:
        from otcdesk.bots.wechaty_channel import WechatyChannel

        wechat = desk.connect(WechatyChannel.connect(settings.wechaty_puppet_service_token,
                                                     settings.wechaty_puppet_service_endpoint, desk.inbound))
    wecom = desk.connect(wecom_channel(settings, desk.inbound)) if settings.wecom_enabled else None
    hub = desk.hub
    assistant = build_assistant(settings, engine, desk, hub, llm)
    if demo:
        log.info("demo knowledge base: %s", await asyncio.to_thread(hub.load_product_guide))
    await asyncio.to_thread(desk.templates.load_folder)  # a refused file is logged with its reason
    await asyncio.to_thread(desk.warm_up, settings.mc_warm_up)
    log.info("desk started: %s", await asyncio.to_thread(desk.runner.recover))
    if redelivered := await asyncio.to_thread(sim.redeliver):  # after recover: these are queued once, as new
        log.warning("simulator: %d message(s) the group saw but the desk had not stored were delivered again",
                    redelivered)
    return DeskProcess(desk=desk, sim=sim, hub=hub, wechat=wechat, wecom=wecom, demo_logins=logins,
                       assistant=assistant)


def wecom_channel(settings: Settings, deliver: Callable) -> Any:
    """The WeCom callback channel (`bots.wecom.WeComChannel`) from the `wecom_*` settings."""
    from otcdesk.bots.wecom import WeComChannel

    return WeComChannel(corp_id=settings.wecom_corp_id, token=settings.wecom_token, aes_key=settings.wecom_aes_key,
                        secret=settings.wecom_secret, agent_id=settings.wecom_agent_id,
                        api_base=settings.wecom_api_base, deliver=deliver, bot_name=settings.wecom_bot_name)
