"""Small documents written for the knowledge tests (imported by the test modules beside it)."""
from __future__ import annotations

from pathlib import Path


def id_number(first17: str) -> str:
    """A mainland ID number with its GB 11643 check digit."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


def luhn_number(prefix: str, length: int = 16) -> str:
    """A card number of `length` digits starting with `prefix` whose Luhn checksum is valid."""
    body = prefix + "0" * (length - len(prefix) - 1)
    for check in "0123456789":
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


SNOWBALL_MD = """# 雪球产品说明

## 产品要素

敲出价：期初价格的 103%。
敲入价：期初价格的 75%。
票息：年化 15.2%，按实际存续天数计息。
观察频率：每月观察一次敲出，每日观察敲入。

## 收益说明

若某个敲出观察日标的收盘价不低于敲出价，产品提前终止，客户获得年化 15.2% 的票息。若从未敲出也从未敲入，到期获得全部票息。
若曾经敲入且到期未敲出，客户承担标的下跌的损失；最大亏损为名义本金的 100%。
"""

ONBOARDING_TXT = """机构客户开户流程

第一步：客户提交营业执照、法定代表人身份证明和授权书。
第二步：合规部门在 3 个工作日内完成反洗钱筛查与适当性评估。
第三步：双方签署 SAC 主协议和补充协议，协议签署后次日可交易。
客户服务热线：95553，或拨打 400-888-8001。
"""

REPORT_HTML = """<html><head><title>场外衍生品月报</title></head><body>
<h1>场外衍生品月报</h1>
<p>本月新增名义本金 38.5 亿元，较上月增长 12%。</p>
<table><tr><th>结构</th><th>笔数</th><th>名义本金</th></tr>
<tr><td>雪球</td><td>126</td><td>21.3 亿元</td></tr>
<tr><td>鲨鱼鳍</td><td>48</td><td>9.7 亿元</td></tr></table>
<p>对冲成本主要来自股指期货基差，本月基差年化约 -4.1%。</p>
</body></html>
"""


def make_pdf(path: Path) -> Path:
    """A two-page PDF with a text layer (ASCII: no CJK font is installed here) and a table."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Hedging policy. The desk hedges vega daily. The delta limit is 25 million CNY per underlying.")
    with pdf.table() as table:
        for row in (("Structure", "Limit"), ("Snowball", "300 million CNY"), ("Sharkfin", "120 million CNY")):
            r = table.row()
            for cell in row:
                r.cell(cell)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Escalation. Breaches are reported to the risk committee within 2 hours.")
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    """A DOCX with a heading, paragraphs and a table."""
    import docx

    d = docx.Document()
    d.add_heading("交易确认书要素", level=1)
    d.add_paragraph("交易确认书须在成交后 1 个交易日内签署。")
    t = d.add_table(rows=3, cols=2)
    for i, (a, b) in enumerate((("要素", "说明"), ("名义本金", "不低于 100 万元"), ("期权费支付日", "T+2"))):
        t.cell(i, 0).text = a
        t.cell(i, 1).text = b
    d.add_paragraph("联系人：张伟、李娜，电话 13812345678。")
    d.save(str(path))
    return path


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "snowball.md").write_text(SNOWBALL_MD, encoding="utf-8")
    (folder / "onboarding.txt").write_text(ONBOARDING_TXT, encoding="utf-8")
    (folder / "report.html").write_text(REPORT_HTML, encoding="utf-8")
    make_pdf(folder / "hedging.pdf")
    make_docx(folder / "confirmation.docx")
    return folder


# ---- fixtures (imported by the test modules; tests dirs have no conftest of their own here) ----------
import pytest  # noqa: E402


@pytest.fixture(scope="module")
def kb_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("kb_corpus"))


@pytest.fixture(scope="module")
def kb_service(kb_corpus, tmp_path_factory):
    from otcdesk.knowledge.service import KnowledgeService

    svc = KnowledgeService(tmp_path_factory.mktemp("kb_root"), "unit")
    svc.ingest([kb_corpus])
    return svc
