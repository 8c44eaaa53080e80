"""What the demo's legacy sources look like: their tables, and the vocabulary that fills them.

The table and column names are a contract: the mapping spec, the profiling rules and the tests
refer to them. Every table carries MySQL options so that the same metadata builds on SQLite and on
MariaDB, and every ``String`` has a length because MySQL needs one for ``VARCHAR``. The vocabulary
(names, places, catalog, phone plans, date formats, status codes) is what ``demo_data`` draws from.
"""

from __future__ import annotations

import re

from sqlalchemy import Column, Index, Integer, MetaData, Numeric, String, Table
from sqlalchemy.dialects import mysql

# utf8mb4, not MySQL's three-byte "utf8": Chinese names must survive a MariaDB round trip.
_MYSQL = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
# A legacy flag as MySQL shops declare one: BOOL is TINYINT(1), holding 0/1; SQLite: INTEGER.
_FLAG = Integer().with_variant(mysql.TINYINT(display_width=1), "mysql", "mariadb")

LEGACY_A_METADATA = MetaData()
LEGACY_B_METADATA = MetaData()
CRM_METADATA = MetaData()
# Written only when a caller asks for it (tests); the product never reads it.
TRUTH_METADATA = MetaData()

# Legacy A: the original Chinese shop. Times are local Asia/Shanghai text (some missing ones are
# MySQL zero dates), amounts are yuan.
A_USERS = Table(
    "users",
    LEGACY_A_METADATA,
    Column("id", Integer, primary_key=True),
    Column("username", String(64)),
    Column("password_hash", String(128)),
    Column("full_name", String(128)),
    Column("email", String(255)),
    Column("phone", String(32)),
    Column("address", String(255)),
    Column("created_at", String(32)),
    **_MYSQL,
)
A_PRODUCTS = Table(
    "products",
    LEGACY_A_METADATA,
    Column("sku", String(32), primary_key=True),
    Column("name", String(255)),
    Column("category", String(64)),
    Column("brand", String(64)),
    Column("stock", Integer),
    Column("price", Numeric(12, 2)),
    Column("market_price", Numeric(12, 2)),
    Column("is_active", _FLAG),
    **_MYSQL,
)
A_ORDERS = Table(
    "orders",
    LEGACY_A_METADATA,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer),
    Column("amount", Numeric(12, 2)),
    Column("status", Integer),
    Column("order_time", String(32)),
    Column("pay_time", String(32), nullable=True),
    **_MYSQL,
)
A_ORDER_ITEMS = Table(
    "order_items",
    LEGACY_A_METADATA,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer),
    Column("sku", String(32)),
    Column("quantity", Integer),
    Column("unit_price", Numeric(12, 2)),
    Index("ix_order_items_order_id", "order_id"),
    **_MYSQL,
)
A_CARTS = Table(
    "carts",
    LEGACY_A_METADATA,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer),
    Column("sku", String(32)),
    Column("quantity", Integer),
    Column("added_at", String(32)),
    **_MYSQL,
)
A_LOGISTICS = Table(
    "logistics",
    LEGACY_A_METADATA,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer),
    Column("carrier", String(64)),
    Column("waybill_no", String(64)),
    Column("shipped_at", String(32)),
    Column("delivered_at", String(32), nullable=True),
    Column("signed_at", String(32), nullable=True),
    Index("ix_logistics_order_id", "order_id"),
    **_MYSQL,
)
A_INVENTORY_LOG = Table(
    "inventory_log",
    LEGACY_A_METADATA,
    Column("id", Integer, primary_key=True),
    Column("sku", String(32)),
    Column("change_qty", Integer),
    Column("reason", String(64)),
    Column("logged_at", String(32)),
    **_MYSQL,
)
A_USER_EVENTS = Table(
    "user_events",
    LEGACY_A_METADATA,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer),
    Column("event_type", String(32)),
    Column("sku", String(32)),
    Column("occurred_at", String(32)),
    **_MYSQL,
)

# Legacy B: the acquired US shop. Amounts are USD cents, order times UTC epoch seconds.
B_CUSTOMERS = Table(
    "customers",
    LEGACY_B_METADATA,
    Column("customer_id", Integer, primary_key=True),
    Column("first_name", String(64)),
    Column("last_name", String(64)),
    Column("email", String(255)),
    Column("mobile", String(32)),
    Column("registered", String(16)),
    **_MYSQL,
)
B_SALES_ORDERS = Table(
    "sales_orders",
    LEGACY_B_METADATA,
    Column("so_number", String(16), primary_key=True),
    Column("customer_id", Integer),
    Column("amount_cents", Integer),
    Column("currency", String(3)),
    Column("state", String(16)),
    Column("created_epoch", Integer),
    **_MYSQL,
)
B_SALES_ORDER_LINES = Table(
    "sales_order_lines",
    LEGACY_B_METADATA,
    Column("id", Integer, primary_key=True),
    Column("so_number", String(16)),
    Column("sku", String(32)),
    Column("qty", Integer),
    Column("unit_price_cents", Integer),
    Index("ix_sales_order_lines_so_number", "so_number"),
    **_MYSQL,
)

CRM_CUSTOMERS = Table(
    "old_crm_customers",
    CRM_METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(128)),
    Column("email", String(255)),
    Column("phone", String(32)),
    **_MYSQL,
)

TRUTH_PEOPLE = Table(
    "people",
    TRUTH_METADATA,
    Column("person_id", Integer, primary_key=True),
    Column("first_name", String(64)),
    Column("last_name", String(64), nullable=True),
    Column("email_normalized", String(255), nullable=True),
    Column("phone_e164", String(32), nullable=True),
    **_MYSQL,
)
TRUTH_PERSON_SOURCES = Table(
    "person_sources",
    TRUTH_METADATA,
    Column("person_id", Integer, nullable=False),
    Column("source_system", String(16), primary_key=True),
    Column("source_key", String(32), primary_key=True),
    Index("ix_person_sources_person_id", "person_id"),
    **_MYSQL,
)

METADATA_BY_SYSTEM = {
    "legacy_a": LEGACY_A_METADATA,
    "legacy_b": LEGACY_B_METADATA,
    "crm": CRM_METADATA,
}


# --- vocabulary ---------------------------------------------------------------------------------


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """('张', 'zhang') pairs from 'zhang'-style text such as '张zhang 李li'."""
    return tuple(re.findall(r"([^\x00-\x7f]+)([a-z]+)", text))


SINGLE_SURNAMES = _pairs(
    "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun 马ma 朱zhu "
    "胡hu 郭guo 何he 高gao 林lin 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 韩han 冯feng 邓deng "
    "曹cao 彭peng 曾zeng 肖xiao 田tian 董dong 袁yuan 潘pan 蒋jiang 蔡cai 杜du 叶ye 程cheng 苏su "
    "魏wei 丁ding 任ren 沈shen"
)
# No compound surname starts with a single surname above, so a name's surname is never ambiguous.
COMPOUND_SURNAMES = _pairs(
    "欧阳ouyang 司马sima 诸葛zhuge 上官shangguan 东方dongfang 皇甫huangfu 尉迟yuchi 公孙gongsun "
    "慕容murong 令狐linghu"
)
GIVEN_NAME_CHARS = _pairs(
    "伟wei 芳fang 娜na 敏min 静jing 丽li 强qiang 磊lei 军jun 洋yang 勇yong 艳yan 杰jie 娟juan "
    "涛tao 明ming 超chao 秀xiu 霞xia 平ping 刚gang 英ying 华hua 玉yu 兰lan 文wen 辉hui 建jian "
    "国guo 红hong 梅mei 鑫xin 婷ting 宇yu 浩hao 欣xin 怡yi 晨chen 博bo 子zi 轩xuan 涵han 雨yu "
    "嘉jia 琪qi 思si 佳jia 俊jun 光guang 海hai 慧hui"
)
_FIRST = (
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Emily Matthew Anna Anthony "
    "Laura Mark Emma Paul Olivia Steven Sophia Andrew Grace Kevin Chloe Brian Hannah George Lucy"
)
_LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Wilson Anderson "
    "Taylor Thomas Moore Jackson Martin Thompson White Harris Clark Lewis Walker Hall Young King "
    "Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans"
)
WESTERN_FIRST_NAMES, WESTERN_LAST_NAMES = tuple(_FIRST.split()), tuple(_LAST.split())
# Reserved example domains: no generated address can belong to a real person.
EMAIL_DOMAINS = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "shop.example.org",
)
CITIES = (
    ("上海市", ("浦东新区", "徐汇区", "静安区")),
    ("北京市", ("朝阳区", "海淀区", "东城区")),
    ("广东省广州市", ("天河区", "越秀区")),
    ("广东省深圳市", ("南山区", "福田区")),
    ("浙江省杭州市", ("西湖区", "余杭区")),
    ("四川省成都市", ("武侯区", "锦江区")),
    ("江苏省南京市", ("鼓楼区", "玄武区")),
    ("湖北省武汉市", ("洪山区", "江汉区")),
)
ROADS = ("人民路", "中山路", "解放路", "建设路", "和平路", "长江路", "新华路", "文化路")
# (category, brands, nouns, lowest price, highest price), prices in fen (1/100 yuan)
CATEGORIES = (
    ("手机", ("华为", "小米", "OPPO", "vivo", "Apple"), ("智能手机",), 99_900, 899_900),
    ("耳机", ("索尼", "漫步者", "华为", "Apple"), ("蓝牙耳机", "降噪耳机"), 9_900, 199_900),
    ("家电", ("美的", "海尔", "格力", "小米"), ("电饭煲", "空气净化器", "微波炉"), 29_900, 599_900),
    ("服装", ("优衣库", "李宁", "安踏", "太平鸟"), ("纯棉T恤", "羽绒服", "牛仔裤"), 4_900, 99_900),
    ("运动鞋", ("李宁", "安踏", "Nike", "Adidas"), ("跑步鞋", "篮球鞋"), 19_900, 129_900),
    ("食品", ("三只松鼠", "良品铺子", "百草味"), ("坚果礼盒", "牛肉干", "茶叶"), 990, 19_900),
    ("图书", ("中信出版社", "商务印书馆"), ("小说", "历史读物", "编程入门"), 1_500, 12_900),
    ("美妆", ("欧莱雅", "百雀羚", "完美日记"), ("面霜", "口红", "精华液"), 2_900, 59_900),
)
CARRIERS = (
    ("顺丰速运", "SF"),
    ("中通快递", "ZTO"),
    ("圆通速递", "YT"),
    ("韵达快递", "YD"),
    ("京东物流", "JD"),
    ("EMS", "E"),
)
# (reason, sign of the stock change; 0 = either)
INVENTORY_REASONS = (
    ("采购入库", 1),
    ("销售出库", -1),
    ("退货入库", 1),
    ("盘点调整", 0),
    ("报损", -1),
)
EVENT_TYPES = ("view", "add_to_cart", "purchase")
A_STATUS_NAMES = {0: "pending", 1: "paid", 2: "shipped", 3: "completed", 4: "cancelled"}
B_STATES = ("new", "paid", "shipped", "delivered", "cancelled")

# Phone plans. phonenumbers accepts every number below as valid (checked exhaustively for the US
# area/exchange pairs and the Chinese four-digit prefixes, phonenumbers 9.0).
CN_MOBILE_PREFIXES = tuple(
    p for p in (*range(130, 140), *range(150, 160), *range(180, 190)) if p != 154
)
US_AREA_CODES = (201, 202, 206, 212, 213, 214, 303, 305, 312, 313, 404, 415, 503, 512, 602, 617)
US_AREA_CODES += (646, 702, 713, 718, 804, 808, 816, 917, 919, 971)
US_EXCHANGES = tuple(e for e in range(200, 1000) if e % 100 != 11 and e != 555)
# How each system writes a phone, by (system, country calling code); {n} is the national number,
# {a} {b} {c} its groups. The sets are disjoint across systems, so the same person's phone always
# looks different in another system.
PHONE_SHAPES = {
    ("legacy_a", "86"): ("{n}", "{n}", "{n}", "{a}-{b}-{c}", "+86{n}"),
    ("legacy_b", "86"): ("+86 {a} {b} {c}", "+86-{a}-{b}-{c}"),
    ("crm", "86"): ("{a} {b} {c}", "+86 {a}-{b}-{c}", "(+86) {a} {b} {c}"),
    ("legacy_a", "1"): ("+1 {a}-{b}-{c}", "+1 ({a}) {b}-{c}"),
    ("legacy_b", "1"): ("({a}) {b}-{c}", "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}"),
    ("crm", "1"): ("+1-{a}-{b}-{c}", "+1 {a}{b}{c}"),
}

MAJOR_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# The formats legacy A mixes into users.created_at and orders.order_time; none reads two ways.
A_DATE_FORMATS = (MAJOR_DATE_FORMAT, "%Y/%m/%d %H:%M", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S")
B_REGISTERED_FORMAT = "%m/%d/%Y"
