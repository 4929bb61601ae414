"""The demo county 青禾县: a fictional but realistic tree, its units, staff and configuration.

Everything is written through the owning app's services (or ``update_or_create`` on natural
keys for configuration tables that have no service), so running :func:`load_demo` twice leaves
the same rows. Cases are built by :mod:`zongzhi.demo_cases` through ``dispatch.services``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.auth.hashers import make_password
from django.db import transaction

from dispatch.models import Category, CategoryKind, DeadlineProfile, DeadlineUnit, RoutingRule
from dispatch.states import Grade
from grids import services as grid_services
from grids.models import Level, Region, Unit, UnitKind
from grids.pinyin import pinyin_initials
from people import services as people_services
from people.models import Role, User

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

DEMO_PASSWORD = "Qinghe-Demo-2026"  # noqa: S105 - the published demo password, not a secret
COUNTY_CODE = "139901000000"
COUNTY_NAME = "青禾县"
DEFAULT_DEMO_CASES = 300

# (township code, name, short key for logins, [(village code, name, grid count)])
TOWNSHIPS = [
    (
        "139901101000",
        "兴隆台镇",
        "xlt",
        [
            ("139901101201", "东关村", 4),
            ("139901101202", "西关村", 3),
            ("139901101203", "南屯村", 3),
            ("139901101204", "北岭村", 4),
        ],
    ),
    (
        "139901102000",
        "河西街道",
        "hx",
        [
            ("139901102001", "滨河社区", 4),
            ("139901102002", "文化路社区", 3),
            ("139901102003", "新华社区", 3),
            ("139901102004", "锦绣社区", 4),
        ],
    ),
    (
        "139901103000",
        "柳河乡",
        "lh",
        [
            ("139901103201", "柳河村", 3),
            ("139901103202", "杨树沟村", 3),
            ("139901103203", "三道岗村", 3),
            ("139901103204", "石门村", 3),
        ],
    ),
]
ORDINALS = "一二三四五六七八九十"

# County bureaus: (name, short name, login key, stationed in the county centre)
COUNTY_BUREAUS = [
    ("青禾县公安局", "县公安局", "gaj", True),
    ("青禾县司法局", "县司法局", "sfj", True),
    ("青禾县信访局", "县信访局", "xfj", True),
    ("青禾县住房和城乡建设局", "县住建局", "zjj", True),
    ("青禾县人力资源和社会保障局", "县人社局", "rsj", True),
    ("青禾县市场监督管理局", "县市场监管局", "scjg", True),
    ("青禾县应急管理局", "县应急管理局", "yjj", False),
    ("青禾县生态环境分局", "县生态环境局", "sthj", False),
    ("青禾县自然资源局", "县自然资源局", "zrzy", False),
    ("青禾县卫生健康局", "县卫健局", "wjj", False),
]
# Township stations: (township key, name, short name, login key)
STATIONS = [
    ("xlt", "兴隆台派出所", "派出所", "pcs_xlt"),
    ("xlt", "兴隆台司法所", "司法所", "sfs_xlt"),
    ("hx", "河西派出所", "派出所", "pcs_hx"),
    ("hx", "河西司法所", "司法所", "sfs_hx"),
    ("lh", "柳河司法所", "司法所", "sfs_lh"),
]

# Two levels, from DOMAIN.md. Codes are stable slugs: routing rules and tests refer to them.
CATEGORIES = [
    (
        "dispute",
        "矛盾纠纷",
        CategoryKind.DISPUTE,
        [
            ("dispute-marriage", "婚姻家庭纠纷"),
            ("dispute-neighbour", "邻里纠纷"),
            ("dispute-homestead", "房屋宅基地纠纷"),
            ("dispute-contract", "合同纠纷"),
            ("dispute-business", "生产经营纠纷"),
            ("dispute-damage", "损害赔偿纠纷"),
            ("dispute-land", "山林土地纠纷"),
            ("dispute-demolition", "征地拆迁纠纷"),
            ("dispute-pollution", "环境污染纠纷"),
            ("dispute-labour", "劳动争议(含欠薪)"),
            ("dispute-consumer", "消费纠纷"),
            ("dispute-medical", "医疗纠纷"),
            ("dispute-traffic", "道路交通事故纠纷"),
            ("dispute-property", "物业纠纷"),
            ("dispute-village", "村务管理纠纷"),
            ("dispute-inheritance", "继承纠纷"),
            ("dispute-other", "其它纠纷"),
        ],
    ),
    (
        "request",
        "民生诉求",
        CategoryKind.REQUEST,
        [
            ("request-city", "城市管理"),
            ("request-municipal", "市政设施"),
            ("request-policy", "政策咨询"),
            ("request-social", "社会保障"),
            ("request-traffic", "交通出行"),
            ("request-education", "教育医疗"),
        ],
    ),
    (
        "hazard",
        "安全隐患",
        CategoryKind.HAZARD,
        [
            ("hazard-production", "安全生产隐患"),
            ("hazard-public-order", "治安隐患"),
            ("hazard-fire", "消防隐患"),
            ("hazard-food", "食品药品安全隐患"),
            ("hazard-geology", "地质灾害隐患"),
        ],
    ),
]

# 12345 practice (Beijing's rules) and the 信访工作条例 limits.
PROFILES = [
    # name, sign (amount, unit), reply (amount, unit), complete (amount, unit)
    (
        "紧急诉求(2小时)",
        (1, DeadlineUnit.CALENDAR_HOURS),
        (2, DeadlineUnit.CALENDAR_HOURS),
        (2, DeadlineUnit.CALENDAR_HOURS),
    ),
    (
        "公共服务(24小时)",
        (2, DeadlineUnit.CALENDAR_HOURS),
        (24, DeadlineUnit.CALENDAR_HOURS),
        (24, DeadlineUnit.CALENDAR_HOURS),
    ),
    (
        "一般诉求(7个工作日)",
        (4, DeadlineUnit.WORKING_HOURS),
        (3, DeadlineUnit.WORKING_DAYS),
        (7, DeadlineUnit.WORKING_DAYS),
    ),
    (
        "复杂诉求(15个工作日)",
        (8, DeadlineUnit.WORKING_HOURS),
        (5, DeadlineUnit.WORKING_DAYS),
        (15, DeadlineUnit.WORKING_DAYS),
    ),
    (
        "信访事项(15/60日)",
        (8, DeadlineUnit.WORKING_HOURS),
        (15, DeadlineUnit.WORKING_DAYS),
        (60, DeadlineUnit.WORKING_DAYS),
    ),
]

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = [
    "建国",
    "秀英",
    "志强",
    "丽娟",
    "海涛",
    "红梅",
    "永刚",
    "春燕",
    "国庆",
    "桂兰",
    "明亮",
    "晓燕",
    "德胜",
    "玉兰",
    "卫东",
    "淑珍",
    "文军",
    "彩霞",
    "立新",
    "慧敏",
]


def stable_int(*parts: object, modulo: int) -> int:
    """A deterministic pseudo-random number: the demo is the same on every machine and run."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % modulo


def demo_person_name(*parts: object) -> str:
    surname = SURNAMES[stable_int("s", *parts, modulo=len(SURNAMES))]
    return surname + GIVEN[stable_int("g", *parts, modulo=len(GIVEN))]


def _rect(lon: float, lat: float, width: float, height: float) -> dict:
    ring = [
        [lon, lat],
        [lon + width, lat],
        [lon + width, lat + height],
        [lon, lat + height],
        [lon, lat],
    ]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


@dataclass
class DemoCounty:
    county: Region
    townships: dict[str, Region] = field(default_factory=dict)  # by login key
    villages: list[Region] = field(default_factory=list)
    grids: list[Region] = field(default_factory=list)
    centres: dict[str, Unit] = field(default_factory=dict)  # by region code
    departments: dict[str, Unit] = field(default_factory=dict)  # by login key
    categories: dict[str, Category] = field(default_factory=dict)  # by code
    profiles: dict[str, DeadlineProfile] = field(default_factory=dict)  # by name
    users: dict[str, User] = field(default_factory=dict)  # by username
    # (username, role label, where, work number); the label stays lazy until printed.
    logins: list[tuple[str, StrOrPromise, str, str]] = field(default_factory=list)


# Grids are 0.012 x 0.010 degree rectangles laid out row by row inside their village.
GRID_W, GRID_H = 0.012, 0.010
BASE_LON, BASE_LAT = 115.30, 38.20


def build_tree(demo: DemoCounty) -> None:
    county_box = _rect(BASE_LON, BASE_LAT, GRID_W * 4 * 4, GRID_H * 3)
    demo.county = grid_services.save_region(
        code=COUNTY_CODE, name=COUNTY_NAME, level=Level.COUNTY, parent=None, boundary=county_box
    )
    for t_index, (t_code, t_name, key, villages) in enumerate(TOWNSHIPS):
        t_lat = BASE_LAT + t_index * GRID_H
        town = grid_services.save_region(
            code=t_code,
            name=t_name,
            level=Level.TOWNSHIP,
            parent=demo.county,
            boundary=_rect(BASE_LON, t_lat, GRID_W * 4 * len(villages), GRID_H),
        )
        demo.townships[key] = town
        for v_index, (v_code, v_name, grid_count) in enumerate(villages):
            v_lon = BASE_LON + v_index * GRID_W * 4
            grids_households = [
                300 + stable_int(v_code, g, modulo=201) for g in range(1, grid_count + 1)
            ]
            village = grid_services.save_region(
                code=v_code,
                name=v_name,
                level=Level.VILLAGE,
                parent=town,
                households=sum(grids_households),
                boundary=_rect(v_lon, t_lat, GRID_W * grid_count, GRID_H),
            )
            demo.villages.append(village)
            for g in range(1, grid_count + 1):
                grid = grid_services.save_region(
                    code=f"{v_code}{g:03d}",
                    name=f"{v_name}第{ORDINALS[g - 1]}网格",
                    level=Level.GRID,
                    parent=village,
                    households=grids_households[g - 1],
                    boundary=_rect(v_lon + (g - 1) * GRID_W, t_lat, GRID_W, GRID_H),
                )
                demo.grids.append(grid)


def build_units(demo: DemoCounty) -> None:
    for region in [demo.county, *demo.townships.values(), *demo.villages]:
        phone = f"0311-{8600_0000 + int(region.code[6:12]) % 10000:08d}"
        demo.centres[region.code] = grid_services.save_unit(
            name=f"{region.name}综治中心",
            kind=UnitKind.CENTRE,
            region=region,
            stationed=True,
            phone=phone,
            address=f"{COUNTY_NAME}{region.name}政务服务中心",
        )
    for name, short, key, stationed in COUNTY_BUREAUS:
        demo.departments[key] = grid_services.save_unit(
            name=name,
            short_name=short,
            kind=UnitKind.DEPARTMENT,
            region=demo.county,
            stationed=stationed,
        )
    for town_key, name, short, key in STATIONS:
        demo.departments[key] = grid_services.save_unit(
            name=name,
            short_name=short,
            kind=UnitKind.DEPARTMENT,
            region=demo.townships[town_key],
            stationed=True,
        )


def build_categories(demo: DemoCounty) -> None:
    for p_index, (p_code, p_name, kind, children) in enumerate(CATEGORIES):
        parent, _created = Category.objects.update_or_create(
            code=p_code,
            defaults={
                "name": p_name,
                "kind": kind,
                "parent": None,
                "sort": p_index * 100,
                "pinyin_initials": pinyin_initials(p_name),
            },
        )
        demo.categories[p_code] = parent
        for c_index, (c_code, c_name) in enumerate(children, start=1):
            demo.categories[c_code], _created = Category.objects.update_or_create(
                code=c_code,
                defaults={
                    "name": c_name,
                    "kind": kind,
                    "parent": parent,
                    "sort": p_index * 100 + c_index,
                    "pinyin_initials": pinyin_initials(c_name),
                },
            )


def build_profiles(demo: DemoCounty) -> None:
    for name, sign, reply, complete in PROFILES:
        demo.profiles[name], _created = DeadlineProfile.objects.update_or_create(
            name=name,
            defaults={
                "sign_amount": sign[0],
                "sign_unit": sign[1],
                "reply_amount": reply[0],
                "reply_unit": reply[1],
                "complete_amount": complete[0],
                "complete_unit": complete[1],
            },
        )


def build_routing(demo: DemoCounty) -> None:
    p = demo.profiles
    ordinary, complex_, urgent, service = (
        p["一般诉求(7个工作日)"],
        p["复杂诉求(15个工作日)"],
        p["紧急诉求(2小时)"],
        p["公共服务(24小时)"],
    )
    c, d = demo.categories, demo.departments
    rules = [
        # (category code or None, region, grade, level, unit, auto, profile, priority)
        (None, demo.county, "", Level.TOWNSHIP, None, False, ordinary, 0),
        ("dispute-neighbour", demo.county, "", Level.VILLAGE, None, True, ordinary, 0),
        ("dispute-labour", demo.county, "", Level.COUNTY, d["rsj"], True, complex_, 0),
        ("dispute-pollution", demo.county, "", Level.COUNTY, d["sthj"], False, complex_, 0),
        ("dispute-property", demo.townships["hx"], "", Level.VILLAGE, None, True, ordinary, 0),
        (
            "dispute-homestead",
            demo.townships["xlt"],
            "",
            Level.TOWNSHIP,
            d["sfs_xlt"],
            True,
            complex_,
            0,
        ),
        ("hazard-production", demo.county, "", Level.COUNTY, d["yjj"], True, service, 0),
        (
            "hazard-production",
            demo.county,
            Grade.EMERGENCY,
            Level.COUNTY,
            d["yjj"],
            True,
            urgent,
            10,
        ),
        ("request-municipal", demo.county, "", Level.COUNTY, d["zjj"], True, service, 0),
        (
            "hazard-public-order",
            demo.townships["xlt"],
            "",
            Level.TOWNSHIP,
            d["pcs_xlt"],
            True,
            service,
            0,
        ),
    ]
    for cat_code, region, grade, level, unit, auto, profile, priority in rules:
        category = c[cat_code] if cat_code else None
        RoutingRule.objects.update_or_create(
            category=category,
            region=region,
            grade=grade,
            defaults={
                "handling_level": level,
                "unit": unit,
                "auto_dispatch": auto,
                "profile": profile,
                "priority": priority,
                "is_active": True,
            },
        )


@dataclass
class StaffSpec:
    username: str
    role: str
    full_name: str
    region: Region | None = None
    unit: Unit | None = None
    is_staff: bool = False
    is_superuser: bool = False


def staff_specs(demo: DemoCounty) -> list[StaffSpec]:
    county = demo.county
    specs = [
        StaffSpec(
            "sysadmin",
            Role.SYSTEM_ADMIN,
            "系统管理员",
            region=county,
            is_staff=True,
            is_superuser=True,
        ),
        StaffSpec("secadmin", Role.SECURITY_ADMIN, "安全管理员", region=county),
        StaffSpec("auditadmin", Role.AUDIT_ADMIN, "审计管理员", region=county),
        StaffSpec(
            "leader_county", Role.LEADER, demo_person_name("leader", "county"), region=county
        ),
        StaffSpec(
            "supervisor_county", Role.SUPERVISOR, demo_person_name("sup", "county"), region=county
        ),
        StaffSpec(
            "dispatcher_county", Role.DISPATCHER, demo_person_name("dis", "county"), region=county
        ),
        StaffSpec("clerk_county", Role.CLERK, demo_person_name("clerk", "county"), region=county),
    ]
    for key, town in demo.townships.items():
        for role, prefix in [
            (Role.CLERK, "clerk"),
            (Role.DISPATCHER, "dispatcher"),
            (Role.SUPERVISOR, "supervisor"),
            (Role.LEADER, "leader"),
        ]:
            specs.append(
                StaffSpec(f"{prefix}_{key}", role, demo_person_name(prefix, key), region=town)
            )
        # The township centre's own handler, for cases it keeps.
        specs.append(
            StaffSpec(
                f"handler_{key}",
                Role.HANDLER,
                demo_person_name("h", key),
                unit=demo.centres[town.code],
            )
        )
    for key, unit in demo.departments.items():
        specs.append(
            StaffSpec(f"handler_{key}", Role.HANDLER, demo_person_name("h", key), unit=unit)
        )
    town_key_of = {t.code: k for k, t in demo.townships.items()}
    for village in demo.villages:
        assert village.parent is not None  # a village always sits under its township
        town_key = town_key_of[village.parent.code]
        serial = village.code[-2:]
        specs.append(
            StaffSpec(
                f"handler_{town_key}_v{serial}",
                Role.HANDLER,
                demo_person_name("hv", village.code),
                unit=demo.centres[village.code],
            )
        )
    counters: dict[str, int] = {}
    for grid in demo.grids:
        town_key = town_key_of[grid.code[:9] + "000"]
        counters[town_key] = counters.get(town_key, 0) + 1
        specs.append(
            StaffSpec(
                f"grid_{town_key}{counters[town_key]:02d}",
                Role.GRID_WORKER,
                demo_person_name("grid", grid.code),
                region=grid,
            )
        )
    # The county centre keeps emergencies it handles itself.
    specs.append(
        StaffSpec(
            "handler_county",
            Role.HANDLER,
            demo_person_name("h", "county"),
            unit=demo.centres[county.code],
        )
    )
    return specs


def build_staff(demo: DemoCounty) -> None:
    # One hash for the shared demo password: hashing it once per user would cost most of the
    # command's run time for no benefit (every demo login has the same password anyway).
    password_hash = make_password(DEMO_PASSWORD)
    for number, spec in enumerate(staff_specs(demo), start=1):
        user = User.objects.filter(username=spec.username).first()
        work_number = f"QH{number:04d}"
        if user is None:
            user = User.objects.create(
                username=spec.username,
                password=password_hash,
                full_name=spec.full_name,
                work_number=work_number,
                is_staff=spec.is_staff,
                is_superuser=spec.is_superuser,
            )
        else:
            changed = {
                "full_name": spec.full_name,
                "work_number": work_number,
                "is_staff": spec.is_staff,
                "is_superuser": spec.is_superuser,
                "is_active": True,
            }
            if any(getattr(user, k) != v for k, v in changed.items()):
                User.objects.filter(pk=user.pk).update(**changed)
                user.refresh_from_db()
        people_services.grant_role(user=user, role=spec.role, region=spec.region, unit=spec.unit)
        demo.users[spec.username] = user
        if spec.unit is not None:
            where = spec.unit.name
        else:
            assert spec.region is not None  # every spec names a region or a unit
            where = spec.region.name
        demo.logins.append((spec.username, Role(spec.role).label, where, work_number))


def load_demo_county() -> DemoCounty:
    """Build or refresh the demo county's tree, units, configuration and staff (no cases)."""
    demo = DemoCounty(county=None)  # type: ignore[arg-type]
    with transaction.atomic():
        build_tree(demo)
        build_units(demo)
        build_categories(demo)
        build_profiles(demo)
        build_routing(demo)
        build_staff(demo)
    return demo
