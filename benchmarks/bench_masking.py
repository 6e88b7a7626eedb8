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


def report(split: str, new: dict, old: dict, n_non_pii: int, show_misses: int) -> None:
    print(f"\nsplit={split}  (recall: planted value gone and recorded with the right kind)")
    print(f"{'kind':12s} {'items':>6s} {'recall':>8s} {'ref@' + REFERENCE_COMMIT:>12s}")
    for kind in EXPECTED_KIND:
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
        report(split, evaluate(new_masker, samples, non_pii), evaluate(old_masker, samples, non_pii), len(non_pii),
               args.misses)


if __name__ == "__main__":
    main()
