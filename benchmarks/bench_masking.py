"""PII masking: recall and precision per kind on a synthetic set, beside the masker as it was at 9d00464.

    .venv/bin/python benchmarks/bench_masking.py [--n 300] [--split dev|heldout|blind|all] [--misses 5]

The set (tests/unit/knowledge/pii_synth.py, fixed seeds) plants `n` items of each kind into varied sentences:
ID numbers with a valid and with a wrong check digit, 15-digit old IDs, mobiles, landlines, bank cards, e-mails,
names in running text and in lists (surname + given-name tables of its own). An item counts as recalled when its
whole value is gone from the text and a mapping of the right kind records it. Precision per kind counts the
mappings of that kind that are planted values, over the PII set and the non-PII set (institutions, hotlines,
credit codes, indexes, products, amounts, dates); the non-PII set's false-positive rate is the share of its
sentences with anything masked. The reference is the old module, loaded from `git show 9d00464:...` into a
temporary module and run in the same process.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "unit" / "knowledge"))

from pii_synth import non_pii_sentences, normalise, pii_samples  # noqa: E402

from otcdesk.knowledge.masking import PiiMasker  # noqa: E402

REFERENCE_COMMIT = "9d00464"
# planted kind → the masker kind that should record it
EXPECTED = {"id_valid": "id_card", "id_invalid": "id_card", "id15": "id_card", "mobile": "mobile",
            "landline": "landline", "bank_card": "bank_card", "email": "email", "name_text": "person",
            "name_list": "person"}


def load_reference():
    """The masking module at REFERENCE_COMMIT, imported under another name."""
    src = subprocess.run(["git", "show", f"{REFERENCE_COMMIT}:otcdesk/knowledge/masking.py"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "masking_9d00464.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("masking_9d00464", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


def _norm_original(kind: str, original: str) -> str:
    planted_kind = {"person": "name_text", "landline": "landline"}.get(kind, kind)
    return normalise(planted_kind, original)


def score(masker, samples, non_pii) -> dict:
    """Recall per planted kind, precision per masker kind, the non-PII false-positive rate and time per sentence."""
    hit, total, misses = {}, {}, {}
    tp, found = {}, {}
    t0 = time.perf_counter()
    for s in samples:
        res = masker.mask(s.text)
        recorded = {(m["kind"], _norm_original(m["kind"], m["original"])) for m in res.mappings}
        planted_norm = set()
        for kind, value in s.planted:
            want = (EXPECTED[kind], normalise(kind, value))
            planted_norm.add(want)
            total[kind] = total.get(kind, 0) + 1
            if want in recorded and value not in res.text:
                hit[kind] = hit.get(kind, 0) + 1
            else:
                misses.setdefault(kind, []).append(f"{s.text} -> {res.text}")
        for rec in recorded:
            found[rec[0]] = found.get(rec[0], 0) + 1
            tp[rec[0]] = tp.get(rec[0], 0) + (rec in planted_norm)
    fp_sentences, fp_examples = 0, []
    for text in non_pii:
        res = masker.mask(text)
        for m in res.mappings:
            found[m["kind"]] = found.get(m["kind"], 0) + 1
        if res.mappings:
            fp_sentences += 1
            fp_examples.append(f"{text} -> {res.text}")
    dt = time.perf_counter() - t0
    return {
        "recall": {k: hit.get(k, 0) / total[k] for k in total},
        "total": total,
        "precision": {k: (tp.get(k, 0) / found[k]) for k in found},
        "found": found,
        "fp_rate": fp_sentences / len(non_pii),
        "fp_examples": fp_examples,
        "misses": misses,
        "ms_per_sentence": 1000 * dt / (len(samples) + len(non_pii)),
    }


def report(split: str, new: dict, old: dict, n_non_pii: int, show_misses: int) -> None:
    print(f"\nsplit={split}  (recall: planted value gone and recorded with the right kind)")
    print(f"{'kind':12s} {'items':>6s} {'recall':>8s} {'ref@' + REFERENCE_COMMIT:>12s}")
    for kind in EXPECTED:
        if kind in new["total"]:
            print(f"{kind:12s} {new['total'][kind]:6d} {new['recall'][kind]:8.3f} {old['recall'].get(kind, 0):12.3f}")
    print(f"{'masker kind':12s} {'masked':>6s} {'precision':>9s} {'ref masked':>11s} {'ref prec':>9s}")
    for kind in sorted(set(new["found"]) | set(old["found"])):
        print(f"{kind:12s} {new['found'].get(kind, 0):6d} {new['precision'].get(kind, float('nan')):9.3f} "
              f"{old['found'].get(kind, 0):11d} {old['precision'].get(kind, float('nan')):9.3f}")
    print(f"non-PII sentences with anything masked: {new['fp_rate']:.3f} (ref {old['fp_rate']:.3f}) of {n_non_pii}")
    print(f"ms per sentence: {new['ms_per_sentence']:.2f} (ref {old['ms_per_sentence']:.2f})")
    if show_misses:
        for kind, rows in new["misses"].items():
            for row in rows[:show_misses]:
                print(f"  MISS {kind}: {row}")
        for row in new["fp_examples"][:show_misses]:
            print(f"  FP: {row}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="planted items per kind")
    ap.add_argument("--split", default="all", choices=["dev", "heldout", "blind", "all"])
    ap.add_argument("--misses", type=int, default=0, help="print this many misses per kind and false positives")
    args = ap.parse_args()
    ref = load_reference()
    new_masker, old_masker = PiiMasker(), ref.PiiMasker()
    new_masker.mask("预热：张三")  # load the dictionaries outside the timing
    non_pii = non_pii_sentences(args.n)
    for split in (["dev", "heldout", "blind"] if args.split == "all" else [args.split]):
        samples = pii_samples(split, args.n)
        report(split, score(new_masker, samples, non_pii), score(old_masker, samples, non_pii), len(non_pii),
               args.misses)


if __name__ == "__main__":
    main()
