"""The due-diligence report (kyc/report.py): HTML that the console's CSP lets through unchanged (no inline style or
script, one stylesheet of the console's own), every value escaped, identifiers masked; the same report as a PDF.
"""
from html.parser import HTMLParser
from io import BytesIO

import pypdf
import pytest

from otcdesk.app.kyc.report import mask_id_number, mask_mobile, render_report_html, render_report_pdf

ID_NUMBER = "110101199003074514"
MOBILE = "13812345678"
HOSTILE = '恶意机构"><script>alert(1)</script><img src=x onerror=alert(2) style="color:red">'
DOC_SHA = "5f" * 32


def report_input(name: str = "示例资产管理有限公司", **screening) -> dict:
    return {
        "application": {
            "id": "KA7F3Q2", "institution_id": 7, "state": "compliance_review", "awaiting_role": "compliance",
            "institution": {"name": name, "uscc": "91310000MA1FL0AB1X", "legal_representative": "王五",
                            "legal_representative_id": ID_NUMBER, "registered_capital_cny": 50_000_000,
                            "address": "上海市浦东新区示例路 1 号", "contact_name": "李四", "contact_mobile": MOBILE,
                            "investor_category": "professional"},
            "history": [{"from": "submitted", "to": "sales_review", "by": "client", "role": "client",
                         "at": "2026-11-30T08:00:00+00:00", "comment": None},
                        {"from": "sales_review", "to": "compliance_review", "by": "sales1", "role": "sales",
                         "at": "2026-12-01T09:00:00+00:00", "comment": "材料齐全 <b>ok</b>"}],
            "screening": {
                "blacklist": {"hit": False, "method": "ecdh-psi", "matched_fields": [], "queried": 2,
                              "holder_size": 1000, "error": None, "at": "2026-12-01T09:00:01+00:00", **screening},
                "negative_news": [{"subject": "institution", "name": name, "source": "财经日报",
                                   "title": "某机构被监管处罚", "date": "2026-10-01",
                                   "passage": "因违规开展业务被处以罚款 <script>x</script>", "negative": True}]},
        },
        "documents": [{"id": "D1", "kind": "business_licence", "filename": "营业执照.pdf",
                       "content_type": "application/pdf", "size": 123_456, "sha256": DOC_SHA,
                       "uploaded_at": "2026-11-30T07:59:00+00:00"}],
        "generated_at": "2026-12-01T09:00:02+00:00",
    }


class Collect(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Collect:
    c = Collect()
    c.feed(html)
    return c


def test_masks():
    assert mask_id_number(ID_NUMBER) == "110101********4514"
    assert mask_id_number("11010119900307451X") == "110101********451X"
    assert mask_mobile(MOBILE) == "138****5678"


def test_the_service_masks_as_the_report_does_short_values_included():
    from otcdesk.app.kyc.service import mask

    assert mask("legal_representative_id", ID_NUMBER) == mask_id_number(ID_NUMBER)
    assert mask("contact_mobile", MOBILE) == mask_mobile(MOBILE)
    assert mask("legal_representative_id", "1234567890") == "******7890"  # never the whole value


def test_html_passes_the_consoles_csp_and_escapes_a_hostile_name():
    html = render_report_html(report_input(HOSTILE))
    doc = parse(html)
    assert "script" not in doc.tags and "style" not in doc.tags and "img" not in doc.tags
    assert not [a for a in doc.attrs if a[1] == "style" or a[1].startswith("on")]
    links = [(k, v) for t, k, v in doc.attrs if t == "link"]
    assert ("rel", "stylesheet") in links and ("href", "/static/style.css") in links
    assert not [a for a in doc.attrs if a[1] in ("src", "href") and a[2] != "/static/style.css"]
    text = "".join(doc.text)
    assert HOSTILE in text  # shown as text, whole
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;" in html  # the quote that would close an attribute is escaped too


def test_html_sections_and_masking():
    html = render_report_html(report_input())
    text = "".join(parse(html).text)
    for expected in ("尽职调查报告", "KA7F3Q2", "一、机构信息", "二、投资者适当性", "三、证明文件", "四、筛查结果",
                     "五、审核记录", "91310000MA1FL0AB1X", "110101********4514", "138****5678", "专业投资者",
                     DOC_SHA, "营业执照.pdf", "未命中", "隐私集合求交", "某机构被监管处罚", "因违规开展业务被处以罚款",
                     "材料齐全 <b>ok</b>", "sales_review → compliance_review", "2026-12-01 09:00:01 UTC"):
        assert expected in text, expected
    assert ID_NUMBER not in html and MOBILE not in html
    hit = "".join(parse(render_report_html(report_input(hit=True, matched_fields=["uscc"]))).text)
    assert "命中黑名单" in hit and "uscc" in hit
    unfinished = "".join(parse(render_report_html(report_input(hit=None, error="holder unreachable"))).text)
    assert "筛查未完成" in unfinished and "holder unreachable" in unfinished


def test_html_with_nothing_yet():
    bare = {"application": {"id": "KA1", "institution": {}, "history": [], "screening": {}}, "documents": [],
            "generated_at": "2026-12-01T09:00:00Z"}
    text = "".join(parse(render_report_html(bare)).text)
    assert "未上传文件" in text and "未筛查" in text and "未检索到相关报道" in text and "暂无审核记录" in text


@pytest.mark.parametrize("name", ["示例资产管理有限公司", HOSTILE])
def test_pdf_opens_and_carries_the_report(name):
    data = render_report_pdf(report_input(name))
    assert render_report_pdf(report_input(name)) == data  # deterministic
    reader = pypdf.PdfReader(BytesIO(data))
    text = "\n".join(p.extract_text() for p in reader.pages)
    for expected in ("尽职调查报告", "KA7F3Q2", "110101********4514", "138****5678", "某机构被监管处罚", "未命中"):
        assert expected in text, expected
    assert ID_NUMBER not in text and MOBILE not in text
    assert DOC_SHA[:16] in text.replace("\n", "")
