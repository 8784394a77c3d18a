"""Province names as printed on Chinese addresses → GeoNames admin1 codes.

GeoNames' admin1 codes for China are numbers (Guangdong is ``30``), while addresses print
names (``Guangdong``, ``Guangdong Province``, ``广东省``). Without this table a province is
only a weak hint, and ``Futian, Guangdong`` could land on a Futian in Chongqing. The codes
are not typed in here: each province is known by its capital, and the code is the admin1 of
the largest gazetteer place of that name in China (so the table follows the gazetteer).
"""

from __future__ import annotations

from stclusters.geocode._normalize import normalize_place, strip_admin_suffix

#: (capital as in the gazetteer, names of its province-level division as printed).
CN_PROVINCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Guangzhou", ("Guangdong", "广东", "廣東", "Kwangtung")),
    ("Beijing", ("Beijing", "北京", "Peking")),
    ("Shanghai", ("Shanghai", "上海")),
    ("Tianjin", ("Tianjin", "天津")),
    ("Chongqing", ("Chongqing", "重庆", "重慶")),
    ("Hangzhou", ("Zhejiang", "浙江")),
    ("Nanjing", ("Jiangsu", "江苏", "江蘇")),
    ("Hefei", ("Anhui", "安徽")),
    ("Fuzhou", ("Fujian", "福建")),
    ("Nanchang", ("Jiangxi", "江西")),
    ("Jinan", ("Shandong", "山东", "山東")),
    ("Zhengzhou", ("Henan", "河南")),
    ("Wuhan", ("Hubei", "湖北")),
    ("Changsha", ("Hunan", "湖南")),
    ("Shijiazhuang", ("Hebei", "河北")),
    ("Taiyuan", ("Shanxi", "山西")),
    ("Xi'an", ("Shaanxi", "陕西", "陝西")),
    ("Chengdu", ("Sichuan", "四川")),
    ("Guiyang", ("Guizhou", "贵州", "貴州")),
    ("Kunming", ("Yunnan", "云南", "雲南")),
    ("Nanning", ("Guangxi", "广西", "廣西", "Guangxi Zhuang")),
    ("Haikou", ("Hainan", "海南")),
    ("Shenyang", ("Liaoning", "辽宁", "遼寧")),
    ("Changchun", ("Jilin", "吉林")),
    ("Harbin", ("Heilongjiang", "黑龙江", "黑龍江")),
    ("Hohhot", ("Inner Mongolia", "Nei Mongol", "内蒙古", "內蒙古")),
    ("Lanzhou", ("Gansu", "甘肃", "甘肅")),
    ("Xining", ("Qinghai", "青海")),
    ("Yinchuan", ("Ningxia", "宁夏", "寧夏", "Ningxia Hui")),
    ("Urumqi", ("Xinjiang", "新疆", "Xinjiang Uygur", "Xinjiang Uyghur")),
    ("Lhasa", ("Tibet", "Xizang", "西藏")),
)

# Words that follow a province's name on addresses and say nothing more.
_TRAILERS = ("province", "sheng", "autonomous region", "zizhiqu", "municipality",
             "shi", "city", "zhuang autonomous region", "hui autonomous region",
             "uygur autonomous region", "uyghur autonomous region")


# Full Chinese names of the autonomous regions, longest first (省/自治区 and the people's
# name both go: 广西壮族自治区 → 广西).
_CJK_TRAILERS = ("维吾尔自治区", "維吾爾自治區", "壮族自治区", "壯族自治區", "回族自治区",
                 "回族自治區", "自治区", "自治區", "省", "市")


def province_key(text: str) -> str:
    """Matching key of a printed province (``Guangdong Province`` → ``guangdong``,
    ``广东省`` → ``广东``, ``广西壮族自治区`` → ``广西``)."""
    key = normalize_place(text)
    for trailer in _CJK_TRAILERS:
        if key.endswith(trailer) and len(key) > len(trailer):
            key = key[: -len(trailer)]
            break
    key = strip_admin_suffix(key)
    changed = True
    while changed:
        changed = False
        for trailer in _TRAILERS:
            if key.endswith(" " + trailer):
                key, changed = key[: -len(trailer) - 1].strip(), True
    return key
