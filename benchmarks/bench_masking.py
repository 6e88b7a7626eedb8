"""PII masking: recall and precision per kind on a synthetic set, beside the masker as it was at 9d00464.

    .venv/bin/python benchmarks/bench_masking.py [--n 300] [--split dev|heldout|blind|all] [--misses 5]

The set (tests/unit/knowledge/pii_synth.py, fixed seeds) plants `n` items of each kind into varied sentences:
ID numbers with a valid and with a wrong check digit, 15-digit old IDs, mobiles, landlines, bank cards, e-mails,
names in running text and in lists (surname + given-name tables of its own). An item counts as recalled when its
whole value is gone from the text and a mapping of the right kind records it. Precision per kind counts the
mappings of that kind that are planted values, over the PII set and the non-PII set (institutions full and
short, stocks, hotlines, credit codes, indexes, products, places, amounts, dates); the non-PII set's
false-positive rate is the share of its sentences with anything masked. Name templates come in three splits
(dev, heldout, blind; see pii_synth for what each was used for). The reference is the old module, loaded from
`git show 9d00464:...` into a temporary module and run in the same process.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "unit" / "knowledge"))

from pii_synth import EXPECTED_KIND, evaluate, non_pii_sentences, pii_samples  # noqa: E402

from otcdesk.knowledge.masking import PiiMasker  # noqa: E402

REFERENCE_COMMIT = "9d00464"


def load_reference():
    """The masking module at REFERENCE_COMMIT, imported under another name."""
    src = subprocess.run(["git", "show", f"{REFERENCE_COMMIT}:otcdesk/knowledge/masking.py"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"masking_{REFERENCE_COMMIT}.py"
        path.write_text(src, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up here
        spec.loader.exec_module(mod)
    return mod


def report(results: dict[str, tuple[dict, dict]], n_non_pii: int, show_misses: int) -> None:
    """One table over the splits: recall per planted kind, precision per masker kind, false alarms, speed."""
    splits = list(results)
    head = " ".join(f"{s:>8s}" for s in splits)
    print(f"recall (planted value gone, recorded with the right kind); new masker | ref@{REFERENCE_COMMIT}")
    print(f"{'kind':11s} {'items':>11s} {head} | {head}")
    for kind in EXPECTED_KIND:
        items = "/".join(str(results[s][0]["total"][kind]) for s in splits)
        new = " ".join(f"{results[s][0]['recall'][kind]:8.3f}" for s in splits)
        old = " ".join(f"{results[s][1]['recall'][kind]:8.3f}" for s in splits)
        print(f"{kind:11s} {items:>11s} {new} | {old}")
    print("precision per masker kind (PII + non-PII sets), masked count in brackets; new | ref")
    kinds = sorted({k for s in splits for r in results[s] for k in r["found"]})
    for kind in kinds:
        cells = [" ".join(f"{r['precision'].get(kind, float('nan')):5.3f}({r['found'].get(kind, 0):3d})"
                          for r in (results[s][i] for s in splits)) for i in (0, 1)]
        print(f"{kind:11s} {cells[0]} | {cells[1]}")
    fp = [" ".join(f"{results[s][i]['fp_rate']:.3f}" for s in splits) for i in (0, 1)]
    ms = [" ".join(f"{results[s][i]['ms_per_sentence']:.2f}" for s in splits) for i in (0, 1)]
    print(f"non-PII sentences with anything masked (of {n_non_pii}): {fp[0]} | {fp[1]}")
    print(f"ms per sentence: {ms[0]} | {ms[1]}")
    for s in splits if show_misses else ():
        new = results[s][0]
        for kind, rows in new["misses"].items():
            for row in rows[:show_misses]:
                print(f"  MISS {s} {kind}: {row}")
        for row in new["fp_examples"][:show_misses]:
            print(f"  FP {s}: {row}")


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
    results = {}
    for split in (["dev", "heldout", "blind"] if args.split == "all" else [args.split]):
        samples = pii_samples(split, args.n)
        results[split] = (evaluate(new_masker, samples, non_pii), evaluate(old_masker, samples, non_pii))
    report(results, len(non_pii), args.misses)


if __name__ == "__main__":
    main()
