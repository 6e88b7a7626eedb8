"""Train the underlying-mention CRF (deterministic): `python -m otcdesk.ner.train_crf [--out PATH]`.

Training data: the labelled dev split (tests/data/parse_dev.jsonl; never the test split), with character spans of
each labelled underlying found through the pool's aliases and codes, plus seeded synthetic messages that put pool
names and made-up company names ("鼎盛新材", "云泰控股") into the phrase shapes clients use, and messages with no
underlying at all. Same data, same order, same parameters → the same model file.
"""
from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from .crf import MODEL_PATH, char_features, vocab_tags
from .lexicon import default_corrector
from .normalize import normalize
from .parser import LIST_MARK
from .pool import INDEX_FUTURES, SHORTHAND_INDEX

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "tests" / "data" / "parse_dev.jsonl"
SEED = 20261122

_PREFIX_CHARS = "华天金银海蓝星云鼎泰恒瑞宏达远航盛丰安和兆信德源嘉诚润博创联鑫辉旭晨凯富锦弘昌隆顺祥瀚宇峰川江湖山林"
_SUFFIXES = ["科技", "集团", "股份", "能源", "医药", "电子", "材料", "控股", "实业", "矿业", "化工", "智能", "生物",
             "传媒", "食品", "新材", "环保", "物流", "光电", "半导体", "银行", "证券", "汽车", "电气"]
_PRE = ["", "", "帮我报个", "帮忙询价:", "麻烦报一下", "老板,", "请问", "来一个", "询价 ", "标的:", "帮我看下 "]
_POST = ["", "", " 报个价", ",谢谢", " 规模1000万", " 多少钱", "?", " 名义本金2000万", " 报一下", " 谢谢"]
_TENOR = ["1个月", "3个月", "2周", "半年", "1年", "2个月", "1M", "3M", "6个月", "两周", "90天"]
_STRIKE = ["平值", "95%", "虚值5%", "行权价105%", "", "ATM", "实值10%", "100%"]
_TYPE = ["看涨", "看跌", "call", "put", "认购", "认沽"]
_SEPS = [" ", " ", "", ",", " / "]


def _aliases_by_code(pool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, code in pool.aliases.items():
        out.setdefault(code, []).append(alias)
    for num, code in SHORTHAND_INDEX.items():
        out.setdefault(code, []).append(num)
    for fut, code in INDEX_FUTURES.items():
        out.setdefault(code, []).append(fut)
    for code in list(out):
        digits = code.split(".")[0]
        if digits.isdigit():
            out[code] += [code, digits]
    return out


def _label_spans(text: str, strings: list[str]) -> list[str]:
    labels = ["O"] * len(text)
    low = text.lower()
    for s in sorted(set(strings), key=len, reverse=True):
        for m in re.finditer(re.escape(s.lower()), low):
            a, b = m.start(), m.end()
            if any(lab != "O" for lab in labels[a:b]):
                continue
            labels[a] = "B-U"
            for k in range(a + 1, b):
                labels[k] = "I-U"
    return labels


def dev_sequences(corrector) -> list[tuple[str, list[str]]]:
    pool = corrector.pool
    by_code = _aliases_by_code(pool)
    seqs = []
    with open(DEV, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            text, _ = corrector.correct(normalize(rec["text"]))
            text = LIST_MARK.sub("", text)
            codes = {r["underlying"] for r in rec.get("requests", []) if r.get("underlying")}
            strings = [a for c in codes for a in by_code.get(c, [c])]
            seqs.append((text, _label_spans(text, strings)))
    return seqs


def _fake_name(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = "".join(rng.sample(_PREFIX_CHARS, 2)) + rng.choice(_SUFFIXES)
        if name not in taken:
            return name


def synthetic_sequences(corrector, n: int = 1600) -> list[tuple[str, list[str]]]:
    rng = random.Random(SEED)
    pool = corrector.pool
    names = sorted(a for a in pool.aliases if re.search(r"[\u4e00-\u9fff]", a))
    taken = set(pool.aliases)
    seqs = []
    for i in range(n):
        kind = rng.random()
        parts: list[tuple[str, bool]] = []  # (text, is_underlying)
        if kind < 0.15:  # no underlying at all
            body = rng.choice([_TENOR, _STRIKE, _TYPE])
            parts = [(rng.choice(_PRE), False), (rng.choice(_TENOR), False), (" ", False),
                     (rng.choice(_STRIKE) + rng.choice(_TYPE), False), (rng.choice(_POST), False)]
            if rng.random() < 0.3:
                parts = [(rng.choice(["谢谢", "好的收到", "雪球的敲入怎么观察", "今天几点收盘", "确认下单",
                                      "麻烦快一点", "稍等", "你好"]), False)]
            del body
        else:
            nnames = 1 if rng.random() < 0.8 else 2
            ul = []
            for _ in range(nnames):
                ul.append(_fake_name(rng, taken) if rng.random() < 0.5 else rng.choice(names))
            name_parts: list[tuple[str, bool]] = []
            for j, nm in enumerate(ul):
                if j:
                    name_parts.append((rng.choice(["和", "、", ",", " "]), False))
                name_parts.append((nm, True))
            terms = [(rng.choice(_TENOR), False), (rng.choice(_STRIKE) + rng.choice(_TYPE), False)]
            if rng.random() < 0.2:
                terms = [(rng.choice(["雪球", "鲨鱼鳍", "凤凰"]), False), (rng.choice(_TENOR), False),
                         (rng.choice(["敲出103 敲入75", "103/75", "障碍110", "敲出100 敲入70"]), False)]
            rng.shuffle(terms)
            sep = rng.choice(_SEPS)
            parts = [(rng.choice(_PRE), False)]
            if rng.random() < 0.8:
                parts += name_parts + [(sep, False)]
                for t in terms:
                    parts += [t, (sep, False)]
            else:
                for t in terms:
                    parts += [t, (sep, False)]
                parts += [(rng.choice(["标的", "", "的"]), False)] + name_parts
            parts.append((rng.choice(_POST), False))
        text, labels = "", []
        for s, is_ul in parts:
            text += s
            if is_ul:
                labels += ["B-U"] + ["I-U"] * (len(s) - 1)
            else:
                labels += ["O"] * len(s)
        if text:
            seqs.append((text, labels))
    return seqs


def train(out: Path = MODEL_PATH, verbose: bool = False) -> dict:
    import pycrfsuite

    corrector = default_corrector()
    data = dev_sequences(corrector) + synthetic_sequences(corrector)
    trainer = pycrfsuite.Trainer(verbose=verbose)
    for text, labels in data:
        trainer.append(char_features(text, vocab_tags(text, corrector)), labels)
    trainer.set_params({"c1": 0.02, "c2": 0.01, "max_iterations": 200, "feature.possible_transitions": True})
    trainer.train(str(out))
    return {"sequences": len(data), "model": str(out), "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    args = ap.parse_args(argv)
    print(json.dumps(train(args.out), ensure_ascii=False))


if __name__ == "__main__":
    main()
