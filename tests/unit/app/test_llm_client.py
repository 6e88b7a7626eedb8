"""app.llm against a real local llama.cpp server (fixture `llm_server`), plus the parts that need no server."""
from __future__ import annotations

import math
import socket
import time

import pytest

from otcdesk.app.llm import (
    Embedder,
    LLMClient,
    LLMConnectionError,
    LLMError,
    LLMResponseError,
    LLMTimeoutError,
    build_embedder,
    build_llm_client,
    validate_json,
)
from otcdesk.app.settings import load_settings

QUOTE_SCHEMA = {
    "type": "object",
    "properties": {
        "underlying": {"type": "string", "minLength": 1, "maxLength": 40},
        "tenor": {"type": "string", "minLength": 1, "maxLength": 20},
    },
    "required": ["underlying", "tenor"],
    "additionalProperties": False,
}

FEW_SHOT = [
    {"role": "user", "content": "从报价消息中提取标的和期限,只输出JSON。\n消息:询价 中证500 3个月 平值看涨 名义本金5000万"},
    {"role": "assistant", "content": '{"underlying": "中证500", "tenor": "3个月"}'},
    {"role": "user", "content": "从报价消息中提取标的和期限,只输出JSON。\n消息:帮忙报个价,沪深300 6个月 95%看跌"},
    {"role": "assistant", "content": '{"underlying": "沪深300", "tenor": "6个月"}'},
]


def extraction_messages(text: str) -> list[dict]:
    return FEW_SHOT + [{"role": "user", "content": f"从报价消息中提取标的和期限,只输出JSON。\n消息:{text}"}]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once the socket is closed


# --- no server needed ------------------------------------------------------------------------------------

def test_build_llm_client_is_none_without_base_url():
    assert build_llm_client(load_settings(llm_base_url=None)) is None
    assert build_embedder(load_settings(embed_base_url=None)) is None


def test_build_llm_client_uses_settings():
    s = load_settings(llm_base_url="http://10.0.0.5:8000/v1/", llm_model="qwen", llm_api_key="k",
                      llm_timeout_s=7.5, embed_base_url="http://10.0.0.6:8000/v1", embed_model="bge-m3")
    client = build_llm_client(s)
    assert isinstance(client, LLMClient)
    assert (client.base_url, client.model, client.timeout, client.flavor) == ("http://10.0.0.5:8000/v1", "qwen", 7.5,
                                                                              "auto")
    emb = build_embedder(s)
    assert isinstance(emb, Embedder) and (emb.base_url, emb.model) == ("http://10.0.0.6:8000/v1", "bge-m3")


def test_unknown_flavor_rejected():
    with pytest.raises(ValueError, match="flavor"):
        LLMClient("http://127.0.0.1:1/v1", "m", flavor="tgi")


def test_validate_json_reports_path_of_violation():
    validate_json({"underlying": "中证1000", "tenor": "1年"}, QUOTE_SCHEMA)
    with pytest.raises(LLMResponseError, match="tenor"):
        validate_json({"underlying": "中证1000", "tenor": 12}, QUOTE_SCHEMA)
    with pytest.raises(LLMResponseError, match="required"):
        validate_json({"underlying": "中证1000"}, QUOTE_SCHEMA)


def test_merge_system_folds_system_into_next_user_turn():
    from otcdesk.app.llm import _merge_system

    msgs = [{"role": "system", "content": "只输出JSON"}, {"role": "user", "content": "沪深300"},
            {"role": "assistant", "content": "{}"}, {"role": "system", "content": "再说一遍"}]
    assert _merge_system(msgs) == [{"role": "user", "content": "只输出JSON\n\n沪深300"},
                                   {"role": "assistant", "content": "{}"}, {"role": "user", "content": "再说一遍"}]


@pytest.mark.parametrize("flavor", ["auto", "llama_cpp", "vllm", "openai"])
def test_unreachable_endpoint_raises_fast(flavor):
    client = LLMClient(f"http://127.0.0.1:{_closed_port()}/v1", "m", timeout=10.0, flavor=flavor)
    t0 = time.monotonic()
    with pytest.raises(LLMConnectionError):
        client.complete_json([{"role": "user", "content": "hi"}], QUOTE_SCHEMA)
    with pytest.raises(LLMConnectionError):
        client.complete_text([{"role": "user", "content": "hi"}])
    emb = Embedder(f"http://127.0.0.1:{_closed_port()}/v1", "m", timeout=10.0)
    with pytest.raises(LLMConnectionError):
        emb.embed(["a"])
    assert time.monotonic() - t0 < 5.0


# --- against the real local server -----------------------------------------------------------------------

@pytest.mark.llm
def test_schema_constrained_extraction_validates(llm_server):
    msg = "询价:中证1000 1年期 雪球 敲入75% 敲出103%"
    out = llm_server.client.complete_json(extraction_messages(msg), QUOTE_SCHEMA, timeout=60)
    validate_json(out, QUOTE_SCHEMA)
    assert set(out) == {"underlying", "tenor"}
    assert all(isinstance(v, str) and v.strip() for v in out.values())
    # the tiny model gets these from two examples; exact wording ("1年" / "1年期") may vary
    assert "1000" in out["underlying"] and "1" in out["tenor"]


@pytest.mark.llm
def test_auto_flavor_detects_llama_cpp(llm_server):
    client = LLMClient(llm_server.base_url, llm_server.model, timeout=60, flavor="auto")
    out = client.complete_json(extraction_messages("沪深300 2个月 看涨 报价"), QUOTE_SCHEMA)
    assert set(out) == {"underlying", "tenor"}
    assert client._resolved == "llama_cpp"


@pytest.mark.llm
def test_wrong_request_shape_fails_cleanly_and_auto_recovers(llm_server):
    # llama.cpp's server refuses the OpenAI/vLLM `json_schema` response_format: a clean LLMError with the status
    vllm_shaped = LLMClient(llm_server.base_url, llm_server.model, timeout=60, flavor="vllm")
    with pytest.raises(LLMResponseError) as info:
        vllm_shaped.complete_json(extraction_messages("中证500 3个月"), QUOTE_SCHEMA, max_tokens=32)
    assert info.value.status == 500 and "json_schema" in str(info.value)  # llama-cpp-python's pydantic error
    # auto mode that guessed wrong (as with an unrecognised server) retries once with the other shape
    auto = LLMClient(llm_server.base_url, llm_server.model, timeout=60, flavor="auto")
    auto._resolved = "vllm"
    out = auto.complete_json(extraction_messages("中证500 3个月"), QUOTE_SCHEMA, max_tokens=32)
    assert set(out) == {"underlying", "tenor"} and auto._resolved == "llama_cpp"


@pytest.mark.llm
def test_complete_text_answers(llm_server):
    text = llm_server.client.complete_text([{"role": "user", "content": "Say hello in one short sentence."}],
                                           timeout=60, max_tokens=24)
    assert isinstance(text, str) and text.strip()


@pytest.mark.llm
def test_tiny_timeout_raises_llm_error_and_server_survives(llm_server):
    t0 = time.monotonic()
    with pytest.raises(LLMTimeoutError) as info:
        llm_server.client.complete_json(extraction_messages("中证500 3个月"), QUOTE_SCHEMA, timeout=0.001,
                                        max_tokens=8)
    assert isinstance(info.value, LLMError) and time.monotonic() - t0 < 2.0
    # (small max_tokens: the server finishes abandoned requests before serving the next one)
    with pytest.raises(LLMTimeoutError):
        llm_server.client.complete_text([{"role": "user", "content": "hi"}], timeout=0.001, max_tokens=8)
    # the abandoned request must not wedge the server for the next caller
    assert llm_server.client.complete_text([{"role": "user", "content": "hi"}], timeout=60, max_tokens=4)


@pytest.mark.llm
def test_truncated_answer_is_invalid_json(llm_server):
    # 3 tokens cannot close the JSON object the grammar starts, so the answer is cut mid-way
    with pytest.raises(LLMResponseError, match="not valid JSON"):
        llm_server.client.complete_json(extraction_messages("中证500 3个月"), QUOTE_SCHEMA, max_tokens=3)


@pytest.mark.llm
def test_answer_violating_the_validation_schema_raises(llm_server):
    strict = dict(QUOTE_SCHEMA, properties=dict(QUOTE_SCHEMA["properties"], notional={"type": "integer"}),
                  required=["underlying", "tenor", "notional"])
    # the server is held to the looser schema (no `notional`, no extra keys), so the answer must lack it
    with pytest.raises(LLMResponseError, match="notional"):
        llm_server.client.complete_json(extraction_messages("中证500 3个月"), strict, request_schema=QUOTE_SCHEMA)


@pytest.mark.llm
def test_embeddings_endpoint(embed_server):
    vecs = embed_server.embedder.embed(["沪深300 看涨期权", "中证500 雪球", "沪深300 看涨期权"])
    assert len(vecs) == 3 and len({len(v) for v in vecs}) == 1 and len(vecs[0]) >= 64
    assert all(math.isfinite(x) for v in vecs for x in v)
    assert vecs[0] == pytest.approx(vecs[2], abs=1e-4)
    assert vecs[0] != pytest.approx(vecs[1], abs=1e-4)
