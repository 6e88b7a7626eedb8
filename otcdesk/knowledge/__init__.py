"""otcdesk.knowledge: RAG over the firm's own documents (a library: no settings, no database, no network of its own).

Ingestion (read → mask → chunk → index) and answering (analyse → retrieve → answerability → extract or
generate) are pipelines of small stages:

- `readers.py`     txt, md, html, pdf (text layer, table rows), docx → llama-index Documents
- `masking.py`     personal data masked before indexing (IDs, mobiles, landlines, cards, e-mail, names);
                   `data/` holds the surname and context-cue tables of its name recogniser
- `chunking.py`    Chinese-aware chunks that keep their heading path and source
- `index.py`       a named, persistent index: chunk store, BM25 over jieba tokens, optional dense vectors
- `text.py`        jieba tokenisation, question key terms, sentence splitting; `data/domain_words.txt`
- `vocabulary.py`  general synonyms and English finance words (`data/`), and the vocabulary LEARNED per knowledge
                   base at ingestion (headings, form labels, defined terms, 简称 short names, titles: vocab.json)
- `pipeline.py`    the answering stages: QuestionAnalyzer → HybridRetriever (BM25 words + char bigrams + dense) →
                   CoverageReranker → SentenceExtractor → Answerability (one calibrated score) → optional
                   LLMJudge and GroundedGenerator; stateless, over an immutable `Snapshot`
- `answer.py`      the groundedness check of generated text
- `qagen.py`       QA-pair generation (deterministic, and LLM pairs kept only when grounded)
- `evaluation.py`  retrieval and answer metrics, JSON and HTML reports
- `protocols.py`   what the library needs from an LLM or embedder
- `service.py`     `KnowledgeService`: the one entry point the app uses
"""
