"""Shared material of the KYC tests: a valid form with synthetic identifiers, small real PDF / PNG / JPEG files,
and a clock the test moves."""
from __future__ import annotations

import datetime as dt
import random
import zlib
import struct

from otcdesk.app.kyc.synthetic import synthetic_id, synthetic_uscc

NAME = "测试资本管理有限公司"


def form(seed: str = "kyc-test", **changes) -> dict:
    rng = random.Random(seed)
    out = {"name": NAME, "uscc": synthetic_uscc(rng), "legal_representative": "韩梅梅",
           "legal_representative_id": synthetic_id(rng), "registered_capital_cny": 50_000_000,
           "address": "上海市浦东新区世纪大道100号", "contact_name": "李雷", "contact_mobile": "13812345678",
           "investor_category": "professional"}
    out.update(changes)
    return out


def pdf_bytes(text: str = "business licence") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


class ManualClock:
    """`app.clock.Clock`'s interface at a time the test sets and moves."""

    def __init__(self, start: dt.datetime | None = None):
        self.t = start or dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.timezone.utc)

    def now(self) -> dt.datetime:
        self.t += dt.timedelta(microseconds=1000)  # strictly increasing, as wall time
        return self.t

    def today(self) -> dt.date:
        return (self.t + dt.timedelta(hours=8)).date()

    def advance(self, **kw) -> None:
        self.t += dt.timedelta(**kw)
