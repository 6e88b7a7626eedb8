"""Synthetic masking set (合成脱敏评测集): personal data planted into varied sentences, and sentences without any.

Deterministic for a seed. Names are drawn from this module's own surname and given-name tables (not from the
masker's lexicon). Running-text and list templates come in three splits, in the order they were written:
``dev`` (tuned against while the name recogniser was built), ``heldout`` (scored at first sight by an early
recogniser at 0.898 running text / 0.957 lists) and ``blind`` (scored at first sight at 0.832 / 0.940). The
misses of both were studied afterwards, so all three are regression sets now; a fresh batch of templates is
the next honest test. Used by
tests/unit/knowledge/test_kb_masking.py (recall floors) and benchmarks/bench_masking.py (figures beside the old
masker).
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field

# Surnames by frequency of use (independent of otcdesk/knowledge/data/surnames.txt), plus compound ones.
SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩邓冯曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟"
    "姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严欧莫孔向常汤康易乔赖文"
) + ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "尉迟", "公孙"]
GIVEN_CHARS = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚英华玲桂兰红建国文辉力永健世广志义兴良海山仁波宁贵福生龙元全胜学祥才"
    "发武新利清飞彬富顺信子昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆民友裕河哲"
    "江浩亮政谦奇之翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以家致树德行时泰盛雄琛钧冠腾楠风航弘秀慧巧美淑惠珠"
    "翠雅芝玉萍娥芬燕彩春菊凤洁梅琳素云莲真雪荣爱香月媛瑞凡佳嘉琼勤珍莉娣叶璐琦晶妍茜秋珊莎锦青倩婷婉瑾颖露瑶怡雁"
    "蓓仪荷丹蓉君琴蕊薇菁梦岚婕馨韵园艺卿聪澜纯毓悦昭冰爽茗羽希欣滢筠柔竹凝晓欢霄枫芸菲寒伊亚宜可舒影阳妮宝初程恒"
    "鸿剑娇宽灵琪晴容睿堂唯威雯萱彦宇雨忠宗曼紫逸贤蝶"
)
PINYIN = ("zhang wang li liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he lin gao luo zheng liang xie "
          "song tang wei fang na min jing li qiang lei jun yang yong yan jie juan tao ming chao xia ping gang ying "
          "hua ling").split()
REGIONS = ("110101 110105 110108 120101 130102 140105 150102 210102 220102 230102 310104 310115 320102 330106 340104 "
           "350203 360102 370202 410105 420106 430104 440106 440304 450103 460106 500103 510104 520102 530102 "
           "540102 610113 620102 630102 640104 650102").split()
AREA_CODES = ("010 020 021 022 023 024 025 027 028 029 0311 0351 0371 0431 0451 0510 0512 0531 0532 0571 0574 "
              "0591 0592 0731 0755 0756 0769 0791 0851 0871 0898 0931 0991").split()
CARD_BINS = ("622202", "622848", "621700", "622588", "621226", "623668", "622700", "621483", "625800", "620200")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass
class Sample:
    """One sentence and the personal data planted in it: (kind, value as written)."""

    text: str
    planted: list[tuple[str, str]] = field(default_factory=list)


def _id_check(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11]


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        digits = body + check
        total = sum((d - 9 if d > 9 else d) for d in (int(c) * (2 if i % 2 else 1)
                                                      for i, c in enumerate(reversed(digits))))
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


class _Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def name(self) -> str:
        given = "".join(self.r.choice(GIVEN_CHARS) for _ in range(1 if self.r.random() < 0.35 else 2))
        return self.r.choice(SURNAMES) + given

    def birth17(self) -> str:
        y, m = self.r.randint(1950, 2005), self.r.randint(1, 12)
        d = self.r.randint(1, 28)
        return f"{self.r.choice(REGIONS)}{y:04d}{m:02d}{d:02d}{self.r.randint(0, 999):03d}"

    def id_valid(self) -> str:
        first = self.birth17()
        v = first + _id_check(first)
        if v.endswith("X") and self.r.random() < 0.3:
            v = v[:-1] + "x"
        return f"{v[:6]} {v[6:14]} {v[14:]}" if self.r.random() < 0.1 else v

    def id_invalid(self) -> str:
        first = self.birth17()
        good = _id_check(first)
        return first + self.r.choice([c for c in "0123456789X" if c != good])

    def id15(self) -> str:
        y, m, d = self.r.randint(30, 84), self.r.randint(1, 12), self.r.randint(1, 28)
        return f"{self.r.choice(REGIONS)}{y:02d}{m:02d}{d:02d}{self.r.randint(0, 999):03d}"

    def mobile(self) -> str:
        n = f"1{self.r.choice('3456789')}{self.r.randint(0, 9)}{self.r.randint(0, 99999999):08d}"
        fmt = self.r.choice(["{n}", "{n}", "{a}-{b}-{c}", "{a} {b} {c}", "+86 {n}", "+86-{n}", "86{n}"])
        return fmt.format(n=n, a=n[:3], b=n[3:7], c=n[7:])

    def landline(self) -> str:
        area = self.r.choice(AREA_CODES)
        length = 8 if len(area) == 3 else self.r.choice([7, 8])
        local = str(self.r.randint(2, 8)) + "".join(str(self.r.randint(0, 9)) for _ in range(length - 1))
        fmt = self.r.choice(["{a}-{n}", "{a}-{n}", "({a}){n}", "（{a}）{n}", "{a} {n}", "{a}{n}", "{a}-{n4}",
                             "+86 {a1} {n}", "+86-{a1}-{n}"])
        out = fmt.format(a=area, n=local, n4=f"{local[:-4]} {local[-4:]}", a1=area[1:])
        if self.r.random() < 0.2:
            out += self.r.choice(["转", " 转 ", "-", " ext ", "ext.", "分机"]) + str(self.r.randint(10, 9999))
        return out

    def bank_card(self) -> str:
        if self.r.random() < 0.8:
            bin6, length = self.r.choice(CARD_BINS), self.r.choice([16, 16, 17, 18, 19, 19])
        else:
            bin6, length = self.r.choice(["4", "5"]) + f"{self.r.randint(0, 99999):05d}", 16
        body = bin6 + "".join(str(self.r.randint(0, 9)) for _ in range(length - len(bin6) - 1))
        digits = _luhn_complete(body)
        if self.r.random() < 0.3:
            return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))
        return digits

    def email(self) -> str:
        local = self.r.choice(["{a}{b}", "{a}.{b}", "{a}_{b}", "{a}{b}{n}", "{b}{a}{n}"]).format(
            a=self.r.choice(PINYIN), b=self.r.choice(PINYIN), n=self.r.randint(1, 9999))
        host = self.r.choice(["163.com", "qq.com", "126.com", "gmail.com", "sina.com", "example.com.cn", "foxmail.com",
                              "htsc.com.cn", "citics.com"])
        return f"{local}@{host}"

    def date(self) -> str:
        return self.r.choice(["{y}年{m}月{d}日", "{y}-{m:02d}-{d:02d}"]).format(
            y=self.r.randint(2019, 2026), m=self.r.randint(1, 12), d=self.r.randint(1, 28))


_VALUE_TEMPLATES = {
    "id_valid": ["客户身份证号码：{v}", "证件号{v}，有效期至2035年。", "身份证 {v}，请核对。", "授权代表身份证号为{v}。",
                 "ID:{v}", "法定代表人证件号码 {v}（复印件附后）", "开户人{v}的资料已齐全。"],
    "mobile": ["经办人手机 {v}，请保持畅通。", "联系方式：{v}", "如有疑问请拨打{v}。", "客户留的电话是{v}，下午回电。",
               "手机号码{v}已验证。", "Tel: {v}"],
    "landline": ["办公电话：{v}", "请致电{v}与交易员确认。", "座机 {v}，工作日 9:00-17:00。", "联系电话{v}（白天）",
                 "传真：{v}", "电话 {v}，邮编 200120。", "客户留了家里的电话{v}。"],
    "bank_card": ["收款卡号 {v}，开户行招商银行上海分行。", "银行卡号：{v}", "请将保证金转入{v}。", "账号 {v} 户名见附件。",
                  "客户尾号核对：卡号{v}。"],
    "email": ["邮箱 {v}", "请把确认书发到{v}，抄送交易台。", "E-mail: {v}", "对方邮箱为{v}。", "联系人邮箱：{v}；"],
}
_VALUE_TEMPLATES["id_invalid"] = _VALUE_TEMPLATES["id_valid"]
_VALUE_TEMPLATES["id15"] = ["旧版身份证号：{v}", "证件号码 {v}（一代证）", "身份证{v}已过期。"]

NAME_TEXT_TEMPLATES = {
    "dev": [
        "本次交易由{n}负责，请各方配合。", "客户{n}于{d}签署了主协议。", "{n}表示将在下周追加保证金。",
        "请联系{n}确认敲出观察日。", "经与{n}沟通，对方同意调整票息。", "{n}先生希望报价有效期延长至明天。",
        "{n}女士询问鲨鱼鳍的参与率。", "会议由{n}主持，{m}记录。", "交易员{n}已完成复核。", "{n}在电话中确认了名义本金。",
        "我们和{n}讨论了对冲方案。", "据{n}介绍，该产品已暂停销售。", "此前{n}曾担任风控总监。", "{n}的账户已冻结。",
        "今天上午{n}来电询问雪球的敲入价。", "已将确认书发送给{n}。", "{n}经理同意按中证500指数报价。",
        "申请人{n}提交了开户材料。", "受益人为{n}。", "{n}总监批准了额度调整。",
    ],
    "heldout": [
        "昨天{n}发来邮件，要求提前赎回。", "风险揭示书由{n}签收。", "{n}回复称暂不追加。", "致{n}：您的保证金不足。",
        "感谢{n}的支持。", "根据{n}提供的资料，客户为专业投资者。", "{n}作为联系人负责对接。",
        "{n}与华泰证券的{m}进行了沟通。", "本周值班人员为{n}。", "{n}本人到场办理。", "对接人{n}已离职，改由{m}跟进。",
        "{n}老师讲解了场外期权的定价。", "销售{n}把报价转给了客户。", "面谈时{n}提到家里还有一套房产。",
    ],
    "blind": [
        "经核实，{n}为该账户的实际控制人。", "{n}说下午三点前回复报价。", "请{n}于周五前补充风险测评问卷。",
        "投资经理{n}建议降低敲入价。", "截至目前，{n}尚未签署补充协议。", "{n}和{m}都同意展期。",
        "听{n}讲，对方更倾向鲨鱼鳍结构。", "关于{n}的开户申请，合规部已出具意见。", "如有疑问，可直接找{n}。",
        "{n}律师审阅了主协议条款。", "由{n}代为签字。", "客户代表{n}、{m}出席了路演。",
        "本次尽调访谈对象：{n}（财务负责人）。", "{n}今天请假，由{m}代班。",
    ],
}
NAME_LIST_TEMPLATES = {
    "dev": ["参会人员：{L}", "项目成员：{L}", "联系人：{L}", "经办人员：{L}", "主要参与人员：{L}", "团队成员：{L}"],
    "heldout": ["出席：{L}", "审批人：{L}", "名单：{L}", "本组成员包括{L}。", "值班安排：{L}"],
    "blind": ["签到表：{L}", "以下人员需要复核：{L}", "抄送：{L}", "获奖名单 {L}", "参与访谈的有{L}等人。"],
}
_LIST_SEPS = ("、", "，", ", ", " / ", "、")

INSTITUTIONS = ["华泰证券", "易方达基金", "申万宏源证券", "国泰君安证券", "海通证券", "东方证券", "方正证券", "中信建投证券",
                "招商银行", "上海商汤智能科技有限公司", "华夏基金管理有限公司", "中信期货有限公司", "广发证券", "安信证券",
                "兴业银行", "平安银行", "南方基金", "嘉实基金", "景顺长城基金", "中国银河证券", "上海证券交易所",
                "深圳证券通信有限公司", "中国金融期货交易所", "高瓴资本", "汇添富基金", "富国基金", "万家基金", "长江证券",
                "华宝证券", "宁波银行", "金元证券", "东吴证券", "国金证券", "财通证券", "明亚保险经纪"]
INDEXES = ["沪深300", "中证500", "中证1000", "上证50", "科创50", "创业板指", "恒生指数", "万得全A", "国证2000", "深证成指",
           "中证红利", "标普500"]
PRODUCTS = ["雪球", "鲨鱼鳍", "凤凰结构", "降敲雪球", "早利雪球", "二元期权", "安鑫一号", "金牛增强", "欧式看涨期权",
            "单鲨结构", "双鲨结构", "红利增强"]
STOCKS = ["贵州茅台", "宁德时代", "隆基绿能", "爱尔眼科", "通威股份", "比亚迪", "万科A", "格力电器", "海天味业", "东方财富",
          "温氏股份", "牧原股份", "金山办公", "方大炭素", "常山北明", "江山欧派", "韦尔股份", "石头科技", "汤臣倍健", "孔雀石"]
SHORT_NAMES = ["华泰", "国君", "中金", "申万", "海通", "广发", "银河", "安信", "方正", "招商", "易方达", "景顺长城", "高瓴", "万家"]
HOTLINES = ["95553", "95588", "95551", "400-820-8820", "4008888001", "4008-888-888", "800-810-8888", "12345", "12315",
            "12386", "95521", "400 888 8888"]
PLACES = ["上海市中山南路888号", "北京市西城区金融大街5号", "深圳市福田区深南大道2012号", "杭州市西湖区", "广州市天河区珠江新城",
          "武汉市江汉区", "成都市高新区天府大道", "南京市鼓楼区"]
_NON_PII_TEMPLATES = [
    "{inst}发布了年度报告。", "{inst}作为牵头单位负责系统建设。", "本项目由{inst}负责，{inst2}参与。",
    "{inst}与{inst2}签署了合作协议。", "联合申报单位：{inst}、{inst2}", "客服热线：{hot}，或拨打{hot2}。",
    "统一社会信用代码：{uscc}", "{idx}指数今日上涨1.2%。", "挂钩标的为{idx}，期限12个月。", "名义本金 {amt} 万元，票息年化{pct}%。",
    "保证金 {amt},000.00 元已于{date}到账。", "{date}为首个敲出观察日。", "{prod}的敲入价为期初价格的{pct}%。",
    "地址：{place}，邮编 200011。", "客户经理将在T+1日回访。", "项目经理负责进度管理。", "由合规部负责反洗钱筛查。",
    "联系人：客服中心", "订单号 {order}，状态已成交。", "{inst}客服邮箱 service@example.com.cn。", "{prod}挂钩{idx}，由{inst}报价。",
    "交易编号 Q{q}，名义本金 {amt} 万元。", "投诉电话：{hot}", "{inst}的注册资本为{amt}万元。", "{date}，{inst}完成了系统上线。",
    "高水平对外开放，提高总体效率。", "方案经风控部审核后报{inst}批准。", "每日观察敲入，每月观察敲出。",
    "平安银行和{inst}的额度均已用完。", "万家基金的{prod}产品规模约{amt}亿元。",
    "客户想做{stock}的{prod}，期限一年。", "{stock}近一个月波动率上升。", "挂钩标的：{stock}、{stock2}", "本次由{short}牵头。",
    "{short}的报价比我们低。", "与{short}相比，我们的票息更高。", "全面提升风险管理水平，方案由风控部审定。",
    "于是我们调整了敲出价。", "成本主要来自对冲，高于预期。", "江苏、浙江和广东的客户较多。", "金额以合同约定为准。",
]
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _uscc(r: random.Random) -> str:
    body = r.choice(["91", "92", "93", "51", "52", "12"]) + r.choice(REGIONS) + "".join(
        r.choice(_USCC_CHARS[:10] if r.random() < 0.5 else _USCC_CHARS) for _ in range(9))
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body, _USCC_WEIGHTS))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


def pii_samples(split: str = "dev", n: int = 300, seed: int = 20240601) -> list[Sample]:
    """`n` planted items of each kind; names in running text and in lists use the split's templates."""
    g = _Gen(seed + ("dev", "heldout", "blind").index(split))
    out: list[Sample] = []
    for kind, templates in _VALUE_TEMPLATES.items():
        for i in range(n if kind != "id15" else n // 3):
            v = getattr(g, kind)()
            out.append(Sample(templates[i % len(templates)].format(v=v), [(kind, v)]))
    tmpl = NAME_TEXT_TEMPLATES[split]
    for i in range(n):
        names = [g.name(), g.name()]
        t = tmpl[i % len(tmpl)]
        planted = [("name_text", names[0])] + ([("name_text", names[1])] if "{m}" in t else [])
        out.append(Sample(t.format(n=names[0], m=names[1], d=g.date()), planted))
    tmpl, done = NAME_LIST_TEMPLATES[split], 0
    while done < n:
        names = [g.name() for _ in range(g.r.randint(2, 5))]
        sep = _LIST_SEPS[done % len(_LIST_SEPS)]
        out.append(Sample(tmpl[done % len(tmpl)].format(L=sep.join(names)), [("name_list", x) for x in names]))
        done += len(names)
    return out


def non_pii_sentences(n: int = 300, seed: int = 20240602) -> list[str]:
    """Sentences about institutions (full and short names), stocks, hotlines, credit codes, indexes, products,
    places, amounts and dates only."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        t = _NON_PII_TEMPLATES[i % len(_NON_PII_TEMPLATES)]
        inst, inst2 = r.sample(INSTITUTIONS, 2)
        stock, stock2 = r.sample(STOCKS, 2)
        hot, hot2 = r.sample(HOTLINES, 2)
        out.append(t.format(inst=inst, inst2=inst2, hot=hot, hot2=hot2, uscc=_uscc(r), idx=r.choice(INDEXES),
                            amt=r.randint(100, 99999), pct=r.choice(["3.5", "75", "80", "103", "15.2"]), date=_Gen(
                                r.randint(0, 10**6)).date(), prod=r.choice(PRODUCTS), place=r.choice(PLACES),
                            order="".join(str(r.randint(0, 9)) for _ in range(20)), q=r.randint(1000000, 9999999),
                            stock=stock, stock2=stock2, short=r.choice(SHORT_NAMES)))
    return out


def normalise(kind: str, value: str) -> str:
    """The form a masker records: digits (and X) for numbers, the value itself otherwise."""
    if kind in ("name_text", "name_list", "email"):
        return value.replace(" ", "")
    if kind == "landline":  # +86 21 … is 021 …; extensions keep their digits
        return re.sub(r"\D", "", re.sub(r"^\+?86[ -]?[(（]?0?", "0", value))
    v = value.upper()
    v = re.sub(r"^\+?86[ -]?(?=1[3-9])", "", v) if kind == "mobile" else v
    return re.sub(r"[^0-9X]", "", v)


# planted kind → the masker kind that should record it
EXPECTED_KIND = {"id_valid": "id_card", "id_invalid": "id_card", "id15": "id_card", "mobile": "mobile",
                 "landline": "landline", "bank_card": "bank_card", "email": "email", "name_text": "person",
                 "name_list": "person"}


def evaluate(masker, samples: list[Sample], non_pii: list[str]) -> dict:
    """Recall per planted kind (the whole value gone from the text and recorded with the right kind), precision
    per masker kind (its mappings that are planted values, over both sets), the share of non-PII sentences with
    anything masked, and milliseconds per sentence."""
    hit, total, misses, tp, found = {}, {}, {}, {}, {}
    t0 = time.perf_counter()
    for s in samples:
        res = masker.mask(s.text)
        recorded = {(m["kind"], _recorded_form(m["kind"], m["original"])) for m in res.mappings}
        planted = {(EXPECTED_KIND[kind], normalise(kind, value)) for kind, value in s.planted}
        for kind, value in s.planted:
            total[kind] = total.get(kind, 0) + 1
            if (EXPECTED_KIND[kind], normalise(kind, value)) in recorded and value not in res.text:
                hit[kind] = hit.get(kind, 0) + 1
            else:
                misses.setdefault(kind, []).append(f"{s.text} -> {res.text}")
        for rec in recorded:
            found[rec[0]] = found.get(rec[0], 0) + 1
            tp[rec[0]] = tp.get(rec[0], 0) + (rec in planted)
    false_alarms = []
    for text in non_pii:
        res = masker.mask(text)
        for m in res.mappings:
            found[m["kind"]] = found.get(m["kind"], 0) + 1
        if res.mappings:
            false_alarms.append(f"{text} -> {res.text}")
    return {
        "recall": {k: hit.get(k, 0) / n for k, n in total.items()},
        "total": total,
        "precision": {k: tp.get(k, 0) / n for k, n in found.items()},
        "found": found,
        "fp_rate": len(false_alarms) / len(non_pii),
        "fp_examples": false_alarms,
        "misses": misses,
        "ms_per_sentence": 1000 * (time.perf_counter() - t0) / (len(samples) + len(non_pii)),
    }


def _recorded_form(kind: str, original: str) -> str:
    return normalise({"person": "name_text"}.get(kind, kind), original)
