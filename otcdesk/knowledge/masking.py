"""Personal-data masking (个人信息脱敏), applied before anything is indexed or sent to an LLM.

Masked kinds: mainland resident ID numbers (GB 11643 check digit), mobile numbers,
bank card numbers (Luhn), personal e-mail addresses and personal names in lists of
people ("主要参与人员：张三、李四"). Institutions, public hotlines (95xxx, 400/800),
fixed lines, unified social credit codes and role mailboxes (webmaster@...) stay.

Each masked value becomes a stable token such as ``[PHONE_3f2a9c1d]`` (an HMAC of the
value under a per-knowledge-base key), so the same person gets the same token across
documents and the app can store token → original in its vault.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from llama_index.core.schema import BaseNode, TransformComponent
from pydantic import PrivateAttr

KINDS = ("id_card", "mobile", "bank_card", "email", "person")
_TOKEN_PREFIX = {"id_card": "ID", "mobile": "PHONE", "bank_card": "CARD", "email": "EMAIL", "person": "NAME"}
TOKEN_RE = re.compile(r"\[(?:ID|PHONE|CARD|EMAIL|NAME)_[0-9a-f]{8}\]")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of an ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def is_valid_id_number(value: str) -> bool:
    """True for an 18-character mainland ID with a plausible birth date and correct check digit."""
    v = value.upper()
    if not re.fullmatch(r"\d{17}[\dX]", v):
        return False
    year, month, day = int(v[6:10]), int(v[10:12]), int(v[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    return id_check_digit(v[:17]) == v[17]


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def is_valid_uscc(value: str) -> bool:
    """Unified social credit code of an organisation (GB 32100-2015 check character)."""
    v = value.upper()
    if len(v) != 18 or any(c not in _USCC_CHARS for c in v):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(v[:17], _USCC_WEIGHTS))
    return _USCC_CHARS[(31 - total % 31) % 31] == v[17]


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) checksum used by bank card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Digits not glued to other digits/letters, so codes such as 91310000631134224W are left alone.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx])(?![0-9A-Za-z])")
_CARD_RE = re.compile(r"(?<![0-9A-Za-z])((?:\d[ -]?){15,18}\d)(?![0-9A-Za-z])")
_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?(1[3-9]\d[ -]?\d{4}[ -]?\d{4})(?![0-9A-Za-z])")
_EMAIL_RE = re.compile(r"(?<![\w.+-])([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_ROLE_MAILBOXES = {
    "webmaster", "service", "services", "support", "info", "kefu", "contact", "ir", "admin", "noreply",
    "no-reply", "hr", "office", "press", "media", "help", "customer", "cs", "complaint", "tousu", "investor",
}

# A label naming a group of people, then a list of short names separated by 、，,;/ or spaces.
_PEOPLE_LABEL = (
    r"(?:参与人员|主要参与人员|项目成员|团队成员|成员|人员|联系人|负责人|项目负责人|经办人|联系人员|专家|"
    r"核心团队|研发团队|项目组成员|姓名|参会人员|签字人|授权代表|经理|法定代表人(?:[（(]签字[)）])?)"
)
_NAME_ITEM = r"(?:[\u4e00-\u9fff](?: [\u4e00-\u9fff]){1,3}(?![\u4e00-\u9fff])|[\u4e00-\u9fff]{2,4}|[A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z.]*){0,3})"
_PEOPLE_LIST_RE = re.compile(
    rf"({_PEOPLE_LABEL}\s*[：:]\s*)({_NAME_ITEM}(?:\s*[、，,/]\s*{_NAME_ITEM})*)"
)
_COMMON_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆"
    "汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞"
    "颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁"
    "蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾"
    "隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝桂鄂"
)
_INSTITUTION_HINT = re.compile(r"(公司|银行|证券|基金|期货|集团|大学|学院|研究|中心|协会|交易所|部门|委员会|有限|科技|技术|平台|系统)")


@dataclass
class MaskResult:
    """Masked text, the token → original mappings and counts per kind."""

    text: str
    mappings: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})


class PiiMasker:
    """Masks personal data in text; deterministic for a given key."""

    def __init__(self, key: bytes = b"otcdesk-default-mask-key"):
        self._key = key

    def token(self, kind: str, original: str) -> str:
        digest = hmac.new(self._key, f"{kind}:{original}".encode(), hashlib.sha256).hexdigest()[:8]
        return f"[{_TOKEN_PREFIX[kind]}_{digest}]"

    def mask(self, text: str) -> MaskResult:
        """Return the masked text plus mappings (token, kind, original) and per-kind counts."""
        result = MaskResult(text=text)
        seen: dict[str, dict[str, str]] = {}

        def sub(kind: str, original: str) -> str:
            tok = self.token(kind, original)
            result.counts[kind] += 1
            if tok not in seen:
                seen[tok] = {"token": tok, "kind": kind, "original": original}
                result.mappings.append(seen[tok])
            return tok

        def id_repl(m: re.Match) -> str:
            v = m.group(1)
            return sub("id_card", v.upper()) if is_valid_id_number(v) and not is_valid_uscc(v) else v

        def card_repl(m: re.Match) -> str:
            raw = m.group(1)
            digits = re.sub(r"[ -]", "", raw)
            # UnionPay (62…) cards run 16–19 digits; other schemes issue 16 or 19
            plausible = (digits.startswith("62") and 16 <= len(digits) <= 19) or (
                len(digits) in (16, 19) and digits[0] in "3456")
            if (plausible and luhn_ok(digits)
                    and not is_valid_id_number(digits) and not is_valid_uscc(digits)):
                return sub("bank_card", digits)
            return raw

        def mobile_repl(m: re.Match) -> str:
            return m.group(0).replace(m.group(1), sub("mobile", re.sub(r"[ -]", "", m.group(1))))

        def email_repl(m: re.Match) -> str:
            addr = m.group(1)
            local = addr.split("@", 1)[0].lower()
            if local in _ROLE_MAILBOXES:
                return addr
            return sub("email", addr)

        def people_repl(m: re.Match) -> str:
            label, items = m.group(1), m.group(2)
            parts = re.split(r"(\s*[、，,/]\s*)", items)
            out = []
            for part in parts:
                if re.fullmatch(r"\s*[、，,/]\s*", part) or not part:
                    out.append(part)
                elif _looks_like_person(part):
                    out.append(sub("person", part))
                else:
                    out.append(part)
            return label + "".join(out)

        t = _ID_RE.sub(id_repl, text)
        t = _CARD_RE.sub(card_repl, t)
        t = _MOBILE_RE.sub(mobile_repl, t)
        t = _EMAIL_RE.sub(email_repl, t)
        t = _PEOPLE_LIST_RE.sub(people_repl, t)
        result.text = t
        return result


def _looks_like_person(item: str) -> bool:
    item = item.strip()
    if re.fullmatch(r"[\u4e00-\u9fff](?: [\u4e00-\u9fff]){1,3}", item):
        item = item.replace(" ", "")
    if _INSTITUTION_HINT.search(item):
        return False
    if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", item):
        return item[0] in _COMMON_SURNAMES or item[:2] in {"欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐"}
    return bool(re.fullmatch(r"[A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z.]*){0,3}", item))


class PiiMaskTransform(TransformComponent):
    """llama-index transform: masks node text in place and collects the mappings and counts."""

    _masker: PiiMasker = PrivateAttr()
    _mappings: dict = PrivateAttr(default_factory=dict)
    _counts: dict = PrivateAttr(default_factory=dict)

    def __init__(self, masker: PiiMasker | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._masker = masker or PiiMasker()
        self._mappings = {}
        self._counts = {k: 0 for k in KINDS}

    @property
    def mappings(self) -> list[dict[str, str]]:
        return list(self._mappings.values())

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[BaseNode]:
        for node in nodes:
            res = self._masker.mask(node.get_content())
            node.set_content(res.text)
            for m in res.mappings:
                self._mappings[m["token"]] = m
            for k, v in res.counts.items():
                self._counts[k] += v
            node.metadata["masked"] = sum(res.counts.values())
        return list(nodes)
