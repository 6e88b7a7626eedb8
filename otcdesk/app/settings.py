"""Settings, loaded once from the environment and passed down explicitly.

Only this module reads environment variables; every other package receives a
`Settings` (or the plain values it needs) from `app`.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration (env vars; see README for the list)."""

    model_config = SettingsConfigDict(env_prefix="OTCDESK_", extra="ignore")

    data_dir: Path = Field(default=Path("./var"))
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    llm_base_url: str | None = None
    llm_model: str = "default"
    llm_api_key: str = "sk-local"
    llm_timeout_s: float = 20.0
    llm_flavor: str = "auto"  # request shape: auto | vllm | openai | llama_cpp (see app/llm.py)
    llm_merge_system: bool = False  # fold system turns into the user turn (chat templates that drop them)
    embed_base_url: str | None = None
    embed_model: str = "bge-m3"
    client_kb: str = "default"  # the client-facing knowledge base the desk answers group questions from
    kb_word_vectors: bool = False  # general Chinese word vectors in matching (the `semantic` extra; measured, not better)
    backend: str = "auto"
    review_ttl_s: float = 120.0
    inbound_rate_limit: int = 60  # messages per chat group per window handed to the desk; more wait (0: no limit)
    inbound_rate_window_s: float = 60.0
    session_ttl_s: float = 8 * 3600.0
    cookie_secure: Literal["auto", "true", "false"] = "auto"  # auto: Secure when the request came over HTTPS
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()  # other sites' origins allowed to POST (comma-separated)
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()  # IPs whose X-Forwarded-Proto/-Host are believed
    # failed logins in `login_lockout_s` that lock a username / a client address for `login_lockout_s`;
    # growing delays between attempts start after a third of them (app/logins.py)
    login_lockout_failures: int = 10
    login_address_lockout_failures: int = 100
    login_lockout_s: float = 900.0
    login_workers: int = 2  # threads verifying passwords (argon2), apart from those serving the console
    login_queue: int = 8  # login attempts that may wait for them; more are answered 429 at once
    # after the quote (CONTRACTS Part 2): orders, four eyes, the risk book, the service's clock
    quote_valid_s: float = 600.0  # an order on a quote older than this is not booked at the quoted price
    four_eyes_notional: float = 50_000_000.0  # a trade above this waits for a second approval by risk
    max_order_notional: float = 2_000_000_000.0  # an order notional above this is refused as absurd
    risk_refresh_s: float = 600.0  # the scheduled revaluation of the live book (0: no scheduled refresh)
    risk_worker_process: bool = True  # revalue the whole book in a low-priority worker process (trading/risk.py)
    mc_warm_up: bool = True  # compile the fused Monte Carlo kernel in the background at start (the tests turn it off)
    leader_retry_s: float = 5.0  # several instances on PostgreSQL: how often a standby tries the leader's lock (app/leader.py)
    market_tick_s: float = 0.0  # demo mode: seconds between simulated market ticks (0: no ticking)
    cjk_font: str | None = None  # OTCDESK_CJK_FONT: a font file with Chinese glyphs for the trade confirmation PDF
    # KYC onboarding (CONTRACTS Part 2): invitations, uploads, screening, the e-seal that signs agreements
    public_base_url: str | None = None  # OTCDESK_PUBLIC_BASE_URL: how clients reach the console (invitation links)
    kyc_invitation_ttl_s: float = 14 * 86400.0  # an invitation token's lifetime
    kyc_upload_max_bytes: int = 5 * 1024 * 1024  # one uploaded document
    blacklist_endpoint: str | None = None  # OTCDESK_BLACKLIST_ENDPOINT: a holder's PSI endpoint (`otcdesk screen serve`)
    blacklist_file: Path | None = None  # OTCDESK_BLACKLIST_FILE: a local list (one identifier a line); demo: a sample list
    news_dir: Path | None = None  # OTCDESK_NEWS_DIR: the negative-news corpus (a folder of articles)
    eseal_key: Path | None = None  # OTCDESK_ESEAL_KEY / _CERT: the desk's e-seal (PEM); generated into the data dir if unset
    eseal_cert: Path | None = None
    # surveillance (CONTRACTS Part 2): a folder with orders.csv, trades.csv, accounts.csv; unset: the desk's own tables
    surveillance_dir: Path | None = None  # OTCDESK_SURVEILLANCE_DIR
    now: str | None = None  # OTCDESK_NOW: an ISO date-time the service's clock starts at (demos and tests only)
    # WeCom (企业微信) callback channel (bots/wecom.py): on when corp id, token and AES key are all set
    wecom_corp_id: str | None = None  # OTCDESK_WECOM_CORP_ID
    wecom_token: str | None = None  # OTCDESK_WECOM_TOKEN: the callback's signature token
    wecom_aes_key: str | None = None  # OTCDESK_WECOM_AES_KEY: the callback's EncodingAESKey (43 characters)
    wecom_secret: str | None = None  # OTCDESK_WECOM_SECRET: the app's secret, for the API's access token
    wecom_agent_id: str | None = None  # OTCDESK_WECOM_AGENT_ID: the app that sends direct (1:1) replies
    wecom_api_base: str = "https://qyapi.weixin.qq.com"  # OTCDESK_WECOM_API_BASE: where replies go
    wecom_bot_name: str = "询价机器人"  # OTCDESK_WECOM_BOT_NAME: the name clients @mention in a group
    # operations: /metrics behind a bearer token when set (open otherwise); OTLP traces when an endpoint is set
    metrics_token: str | None = None  # OTCDESK_METRICS_TOKEN
    log_format: Literal["json", "text"] | None = None  # OTCDESK_LOG_FORMAT: unset: json for `serve`, text for commands
    otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = Field(default="otcdesk", validation_alias="OTEL_SERVICE_NAME")
    ray_address: str | None = Field(default=None, validation_alias="RAY_ADDRESS")
    wechaty_puppet_service_token: str | None = Field(default=None, validation_alias="WECHATY_PUPPET_SERVICE_TOKEN")
    wechaty_puppet_service_endpoint: str | None = Field(default=None, validation_alias="WECHATY_PUPPET_SERVICE_ENDPOINT")

    @field_validator("cookie_secure", "log_format", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value

    @cached_property
    def db_url(self) -> str:
        """SQLAlchemy URL: `DATABASE_URL` when set, else a SQLite file under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'otcdesk.db').resolve()}"

    @property
    def wecom_enabled(self) -> bool:
        return bool(self.wecom_corp_id and self.wecom_token and self.wecom_aes_key)

    @property
    def is_postgres(self) -> bool:
        return self.db_url.startswith("postgresql")

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides) -> Settings:
    """Read the environment once; keyword overrides win (used by tests and the CLI)."""
    return Settings(**overrides)
