"""What KYC onboarding calls to screen an applicant: the blacklist (PSI or a local list) and negative news.

`Screener.screen(institution)` queries the applicant's `uscc` and `legal_representative_id` against the blacklist —
privately (`psi.psi_query`) when a holder's endpoint is configured, else against a local list file — and looks the
institution's and its legal representative's names up in the negative-news corpus. A holder that does not answer
leaves the blacklist result unknown (`hit: None` with `error`), never an exception. Identifiers are never logged.
Blocking (EC arithmetic, HTTP, file reads): call it from a thread in async code.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from otcdesk.app.kyc import psi

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SAMPLE_LIST = DATA_DIR / "blacklist_sample.txt"
SAMPLE_NEWS_DIR = DATA_DIR / "news_sample"
# On the embedded sample list (synthetic, valid check characters): use them to exercise a blacklist hit.
SAMPLE_BLACKLISTED_USCC = "91440300Y1AWB92PMM"
SAMPLE_BLACKLISTED_ID = "336286197911222718"
SCREENED_FIELDS = ("uscc", "legal_representative_id")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Screener:
    """Blacklist and negative-news screening, configured once; `screen` is safe to call from several threads."""

    def __init__(self, *, endpoint: str | None, list_file: Path | None, news_dir: Path | None,
                 timeout_s: float = 30):
        self.endpoint = endpoint or None
        self.list_file = Path(list_file) if list_file else None
        self.news_dir = Path(news_dir) if news_dir else None
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._list: tuple[float, frozenset[str]] | None = None  # (mtime, identifiers)
        self._news = None

    @classmethod
    def from_settings(cls, settings, *, demo: bool) -> "Screener":
        """From `blacklist_endpoint` / `blacklist_file` / `news_dir`; in demo mode the embedded samples fill the gaps."""
        endpoint = settings.blacklist_endpoint
        list_file = settings.blacklist_file
        news_dir = settings.news_dir
        if demo and not endpoint and not list_file:
            list_file = SAMPLE_LIST
        if demo and not news_dir:
            news_dir = SAMPLE_NEWS_DIR
        return cls(endpoint=endpoint, list_file=list_file, news_dir=news_dir)

    @property
    def method(self) -> str:
        return "ecdh-psi" if self.endpoint else "local-file" if self.list_file else "not_configured"

    def screen(self, institution: dict) -> dict:
        """`{"blacklist": {...}, "negative_news": [hits]}` for one applicant (see the module docstring)."""
        return {"blacklist": self.blacklist(institution), "negative_news": self.negative_news(institution)}

    def blacklist(self, institution: dict) -> dict:
        fields = {f: psi.normalise(str(institution[f])) for f in SCREENED_FIELDS if institution.get(f)}
        fields = {f: v for f, v in fields.items() if v}
        result = {"hit": False, "method": self.method, "matched_fields": [], "queried": len(set(fields.values())),
                  "holder_size": None, "endpoint": self.endpoint, "error": None, "at": _now()}
        if self.endpoint:
            try:
                answer = psi.psi_query(self.endpoint, list(fields.values()), timeout_s=self.timeout_s)
            except psi.PsiError as exc:
                log.warning("blacklist screening: the PSI holder gave no answer: %s", exc)
                result.update(hit=None, error=str(exc))
                return result
            matched = set(answer["matches"])
            result["holder_size"] = answer["holder_size"]
            result["queried"] = answer["queried"]
        elif self.list_file:
            try:
                held = self._local_list()
            except OSError as exc:
                log.warning("blacklist screening: cannot read the list file: %s", exc.__class__.__name__)
                result.update(hit=None, error=f"cannot read the blacklist file {self.list_file.name}: "
                                              f"{exc.strerror or exc.__class__.__name__}")
                return result
            matched = {v for v in fields.values() if v in held}
            result["holder_size"] = len(held)
        else:
            return result
        result["matched_fields"] = [f for f, v in fields.items() if v in matched]
        result["hit"] = bool(result["matched_fields"])
        return result

    def _local_list(self) -> frozenset[str]:
        mtime = self.list_file.stat().st_mtime
        with self._lock:
            if self._list is None or self._list[0] != mtime:
                self._list = (mtime, frozenset(psi.read_list(self.list_file)))
            return self._list[1]

    def negative_news(self, institution: dict) -> list[dict]:
        if not self.news_dir:
            return []
        names = {"institution": institution.get("name"), "legal_representative": institution.get("legal_representative")}
        names = {k: v.strip() for k, v in names.items() if isinstance(v, str) and v.strip()}
        if not names:
            return []
        try:
            index = self._news_index()
        except OSError as exc:
            log.warning("negative-news screening: cannot read the news folder: %s", exc.__class__.__name__)
            return []
        return index.hits(names)

    def _news_index(self):
        from otcdesk.app.kyc.news import NewsIndex

        with self._lock:
            if self._news is None:
                self._news = NewsIndex.from_dir(self.news_dir)
            return self._news
