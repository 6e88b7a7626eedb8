"""`otcdesk kb ...`: ingest, ask (one or --jsonl), qa-gen and eval over a named knowledge base."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from otcdesk.app.commands import CommandError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    kb = subparsers.add_parser("kb", help="knowledge bases: ingest documents, ask, generate QA pairs, evaluate")
    sub = kb.add_subparsers(dest="kb_command", required=True)

    p = sub.add_parser("ingest", help="read, mask, chunk and index files or folders")
    p.add_argument("paths", nargs="+", help="files or folders (txt, md, html, pdf, docx)")
    p.add_argument("--kb", default="default", help="knowledge base name")
    p.set_defaults(handler=ingest)

    p = sub.add_parser("ask", help="answer a question from a knowledge base")
    p.add_argument("question", nargs="?", help="the question (omit with --jsonl)")
    p.add_argument("--kb", default="default")
    p.add_argument("--k", type=int, default=5, help="passages to retrieve")
    p.add_argument("--jsonl", action="store_true", help="read questions from stdin, one per line")
    p.set_defaults(handler=ask)

    p = sub.add_parser("qa-gen", help="generate question-answer pairs from the ingested chunks")
    p.add_argument("--kb", default="default")
    p.add_argument("--out", required=True, help="JSONL file to write")
    p.add_argument("--max", type=int, default=None, help="keep at most this many pairs")
    p.add_argument("--no-llm", action="store_true", help="deterministic pairs only, even with an LLM configured")
    p.set_defaults(handler=qa_gen)

    p = sub.add_parser("eval", help="run a QA set against a knowledge base")
    p.add_argument("--qa", required=True, help="JSONL: question, answer, source, answerable, keywords")
    p.add_argument("--kb", default="default")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--html", default=None, help="write an HTML report here")
    p.add_argument("--details", action="store_true", help="include per-question rows in the JSON")
    p.set_defaults(handler=evaluate)


def _optional(builder_name: str, settings):
    """`app.llm.build_llm_client` / `build_embedder` when available and configured, else None."""
    try:
        import otcdesk.app.llm as llm_mod
    except ImportError:
        return None
    builder = getattr(llm_mod, builder_name, None)
    if builder is None:
        return None
    try:
        return builder(settings)
    except Exception as exc:  # a misconfigured endpoint must not break offline use
        log.warning("%s failed (%s); continuing without it", builder_name, exc)
        return None


def _service(args, settings, *, llm: bool):
    from otcdesk.knowledge.service import KnowledgeService, valid_kb_name

    if not valid_kb_name(args.kb):
        raise CommandError("invalid knowledge base name", args.kb)
    settings.ensure_dirs()
    return KnowledgeService(
        settings.data_dir / "kb",
        args.kb,
        embedder=_optional("build_embedder", settings),
        llm=_optional("build_llm_client", settings) if llm else None,
        llm_timeout=settings.llm_timeout_s,
        semantic=settings.kb_word_vectors,
    )


def _progress(total_hint: str):
    """A tqdm bar on stderr, as a `progress(done, total, label)` callback."""
    from tqdm import tqdm

    state: dict = {}

    def cb(done: int, total: int, label: str) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=total_hint, unit="item", file=sys.stderr,
                                disable=not sys.stderr.isatty() and total < 2, leave=False)
        bar = state["bar"]
        bar.set_postfix_str(str(label)[:30], refresh=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return cb


def ingest(args, settings) -> dict:
    paths = [Path(p) for p in args.paths]
    if not any(p.exists() for p in paths):
        raise CommandError("no such file or folder", [str(p) for p in paths])
    svc = _service(args, settings, llm=False)
    result = svc.ingest(paths, progress=_progress("ingest"))
    mappings = result.pop("mappings", [])
    stored = 0
    if mappings:
        from otcdesk.app.db import init_db, make_engine
        from otcdesk.app.vault import store_mappings

        engine = make_engine(settings.db_url)
        init_db(engine)
        stored = store_mappings(engine, args.kb, mappings)
        engine.dispose()
    result["vault_stored"] = stored
    return result


def _answer_doc(svc, question: str, k: int) -> dict:
    if not question or not question.strip():
        return {"answer": "问题为空，无法回答。", "refused": True, "citations": []}
    return svc.ask(question, k=k)


def ask(args, settings):
    svc = _service(args, settings, llm=True)
    if args.jsonl:
        for line in sys.stdin:
            line = line.rstrip("\n")
            question = line
            if line.lstrip().startswith("{"):
                try:
                    question = str(json.loads(line).get("question", ""))
                except (json.JSONDecodeError, AttributeError):
                    question = line
            doc = _answer_doc(svc, question, args.k)
            sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
        return None
    if not args.question:
        raise CommandError("a question is required (or --jsonl)", None)
    return _answer_doc(svc, args.question, args.k)


def qa_gen(args, settings) -> dict:
    from otcdesk.knowledge.qagen import write_jsonl

    svc = _service(args, settings, llm=not args.no_llm)
    if not svc.index.manifest:
        raise CommandError("knowledge base is empty; ingest documents first", args.kb)
    rows = svc.generate_qa(max_pairs=args.max, use_llm=not args.no_llm)
    n = write_jsonl(rows, Path(args.out))
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    return {"kb": args.kb, "pairs": n, "by_kind": kinds, "out": str(args.out)}


def evaluate(args, settings) -> dict:
    from otcdesk.knowledge.evaluation import html_report

    qa_path = Path(args.qa)
    if not qa_path.is_file():
        raise CommandError("QA file not found", str(qa_path))
    rows = []
    for i, line in enumerate(qa_path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError("bad JSON line in QA file", {"line": i + 1, "error": str(exc)}) from exc
        if not isinstance(row, dict) or not row.get("question"):
            raise CommandError("QA line without a question", {"line": i + 1})
        rows.append(row)
    svc = _service(args, settings, llm=True)
    result = svc.evaluate(rows, k=args.k, progress=_progress("eval"))
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(html_report(result), encoding="utf-8")
    out = {"kb": args.kb, "k": args.k, "summary": result["summary"], "html": args.html}
    failures = [r for r in result["rows"]
                if (r["answerable"] and not (r["answer_correct"] and r["citation_correct"]))
                or (not r["answerable"] and not r["refused"])]
    out["failures"] = len(failures)
    if args.details:
        out["rows"] = result["rows"]
    return out
