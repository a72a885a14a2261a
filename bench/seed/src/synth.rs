//! Synthetic but realistic-looking text: company names, people, addresses, ID numbers.
//! None of it is real; the shapes follow what registration certificates look like.

use super::population::{DIVISIONS, Rng};

const SURNAMES: &[&str] = &[
    "陈", "李", "黄", "张", "梁", "林", "刘", "吴", "罗", "何", "郑", "杨", "谢", "邓", "冯", "曾",
    "周", "叶", "王", "朱", "钟", "赖", "徐", "苏", "卢", "潘", "蔡", "彭", "余", "许", "欧阳",
    "司徒", "邱", "赵", "胡", "郭", "马", "高", "唐", "温", "麦", "植", "龚", "莫",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
    "秀英", "霞", "平", "刚", "桂英", "志强", "建华", "国强", "文", "华", "辉", "鹏", "海", "红",
    "玲", "燕", "斌", "波", "宇", "浩", "俊", "峰", "婷", "欣", "晓", "嘉", "佳", "锦", "荣", "添",
    "耀", "振", "健", "坤", "永明", "少华", "伟强", "美玲", "丽萍", "国华", "家豪", "梓轩", "子涵",
    "思远", "志明", "惠珍", "秋菊", "润发", "金生", "德胜",
];
const BRAND: &[&str] = &[
    "恒", "信", "华", "美", "鑫", "盛", "达", "兴", "丰", "源", "宏", "远", "泰", "和", "昌", "隆",
    "瑞", "祥", "佳", "安", "康", "永", "金", "海", "天", "广", "新", "利", "德", "通", "汇", "诚",
    "嘉", "明", "凯", "博", "锦", "宇", "辰", "卓", "越", "润", "晟", "弘", "百", "顺", "富", "联",
    "创", "科", "智", "致", "鼎", "益", "仁", "誉", "福", "乐", "旺", "北江", "连江", "南粤",
    "岭南", "英红", "笔架", "飞来", "凤城", "清泉", "碧桂", "穗清",
];
const INDUSTRY: &[&str] = &[
    "食品",
    "餐饮管理",
    "建材",
    "贸易",
    "电子科技",
    "医药",
    "农业发展",
    "物流",
    "建筑工程",
    "房地产开发",
    "服装",
    "五金",
    "装饰工程",
    "环保科技",
    "信息技术",
    "商贸",
    "大药房",
    "汽车销售",
    "石材",
    "茶业",
    "水泥",
    "机电设备",
    "家具",
    "陶瓷",
    "化工",
    "印刷",
    "教育咨询",
    "旅游开发",
    "酒店管理",
    "物业管理",
    "新能源科技",
    "生物科技",
    "医疗器械",
    "化妆品",
    "预付卡服务",
    "健身服务",
    "美容美发",
    "养生保健",
    "农产品",
    "水产",
    "粮油",
    "酒业",
];
/// (name suffix, entity type)
const COMPANY_SUFFIX: &[(&str, &str)] = &[
    ("有限公司", "有限责任公司"),
    ("有限责任公司", "有限责任公司"),
    ("股份有限公司", "股份有限公司"),
    ("集团有限公司", "有限责任公司"),
    ("有限公司分公司", "有限责任公司分公司"),
];
const COMPANY_SUFFIX_WEIGHTS: &[u64] = &[640, 200, 60, 30, 70];
const SHOPS: &[&str] = &[
    "副食店",
    "餐馆",
    "五金店",
    "服装店",
    "美容美发店",
    "水果店",
    "便利店",
    "小吃店",
    "药店",
    "烟酒商行",
    "农资店",
    "汽车维修部",
    "粮油店",
    "电器维修部",
    "手机店",
    "早餐店",
    "奶茶店",
    "烧腊店",
    "母婴用品店",
    "建材经营部",
];
const COOPS: &[&str] = &[
    "蔬菜种植",
    "茶叶",
    "柑橘",
    "生猪养殖",
    "水稻种植",
    "砂糖桔",
    "麻竹笋",
    "红茶",
    "家禽养殖",
    "淮山种植",
    "水果种植",
    "中药材种植",
];
const SOCIAL: &[&str] = &[
    "养老院",
    "培训学校",
    "幼儿园",
    "康复中心",
    "职业技能培训中心",
];
const VILLAGES: &[&str] = &[
    "石角",
    "太和",
    "飞来峡",
    "龙塘",
    "源潭",
    "石潭",
    "浸潭",
    "大站",
    "青莲",
    "黎溪",
    "连江口",
    "九龙",
    "西牛",
    "东华",
    "星子",
    "三江",
    "寨岗",
    "大麦山",
    "汤塘",
    "水头",
];
const ROADS: &[&str] = &[
    "人民路",
    "中山路",
    "解放路",
    "建设路",
    "新华路",
    "北江路",
    "先锋路",
    "连江路",
    "沿江路",
    "东风路",
    "和平路",
    "环城路",
    "迎宾大道",
    "工业大道",
    "府前路",
    "桥北路",
    "银泉路",
    "凤鸣路",
    "人民二路",
    "松岗路",
    "广清大道",
    "清远大道",
    "英州大道",
    "城南大道",
];

/// The registration data of one operator.
pub struct OperatorText {
    pub name: String,
    pub entity_type: String,
    pub legal_representative: String,
    pub legal_rep_id_number: String,
    pub address: String,
    /// An individual business's address is its keeper's: personal data.
    pub address_is_personal: bool,
    /// Some companies renamed: their earlier name.
    pub former_name: Option<String>,
}

pub fn person_name(rng: &mut Rng) -> String {
    format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN))
}

/// A resident ID number (GB 11643): division, birth date, sequence, ISO 7064 check digit.
pub fn id_number(rng: &mut Rng, division: &str) -> String {
    let year = rng.between(1955, 2001);
    let month = rng.between(1, 12);
    let day = rng.between(1, 28);
    let seq = rng.below(1000);
    let first17 = format!("{division}{year:04}{month:02}{day:02}{seq:03}");
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

fn province(division: &str) -> &'static str {
    match &division[..2] {
        "44" => "广东省",
        "33" => "浙江省",
        "43" => "湖南省",
        "51" => "四川省",
        "45" => "广西壮族自治区",
        _ => "",
    }
}

pub fn address(rng: &mut Rng, division: usize) -> String {
    let (code, full, _, _) = DIVISIONS[division];
    let mut out = format!(
        "{}{}{}{}号",
        province(code),
        full,
        rng.pick(ROADS),
        rng.between(1, 399)
    );
    if rng.chance(400) {
        out.push_str(&format!(
            "{}栋{}室",
            rng.between(1, 30),
            rng.between(101, 2808)
        ));
    }
    out
}

/// Name and registration data of an operator of the given kind (positions 1-2).
pub fn operator_text(rng: &mut Rng, kind: &str, division: usize) -> OperatorText {
    let (code, full, locality, _) = DIVISIONS[division];
    let county = full.strip_prefix("清远市").unwrap_or(full);
    let legal_representative = person_name(rng);
    let legal_rep_id_number = id_number(rng, code);
    let address = address(rng, division);
    let (name, entity_type, personal) = match kind {
        "92" => (
            format!("{county}{}{}", legal_representative, rng.pick(SHOPS)),
            "个体工商户".to_string(),
            true,
        ),
        "93" => (
            format!(
                "{locality}{}{}{}专业合作社",
                rng.pick(VILLAGES),
                rng.pick(BRAND),
                rng.pick(COOPS)
            ),
            "农民专业合作社".to_string(),
            false,
        ),
        "52" => (
            format!(
                "{locality}{}{}{}",
                rng.pick(BRAND),
                rng.pick(BRAND),
                rng.pick(SOCIAL)
            ),
            "民办非企业单位".to_string(),
            false,
        ),
        _ => {
            let (suffix, entity_type) = COMPANY_SUFFIX[rng.weighted(COMPANY_SUFFIX_WEIGHTS)];
            // Most companies carry their locality; some registered without it.
            let prefix = if rng.chance(850) { locality } else { "" };
            (
                format!(
                    "{prefix}{}{}{}{suffix}",
                    rng.pick(BRAND),
                    rng.pick(BRAND),
                    rng.pick(INDUSTRY)
                ),
                entity_type.to_string(),
                false,
            )
        }
    };
    let former_name = if kind == "91" && rng.chance(50) {
        Some(format!(
            "{locality}{}{}{}有限公司",
            rng.pick(BRAND),
            rng.pick(BRAND),
            rng.pick(INDUSTRY)
        ))
    } else {
        None
    };
    OperatorText {
        name,
        entity_type,
        legal_representative,
        legal_rep_id_number,
        address,
        address_is_personal: personal,
        former_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_carry_a_valid_check_digit() {
        let mut rng = Rng::new(1, 1, 1);
        for _ in 0..100 {
            let id = id_number(&mut rng, "441802");
            assert_eq!(id.len(), 18);
            assert!(id.starts_with("441802"));
        }
        // A published example of the algorithm: 11010519491231002X.
        let sum: u32 = "11010519491231002"
            .bytes()
            .zip([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        assert_eq!(b"10X98765432"[(sum % 11) as usize], b'X');
    }

    #[test]
    fn names_fit_the_entity_kind() {
        let mut rng = Rng::new(5, 5, 5);
        let shop = operator_text(&mut rng, "92", 1);
        assert!(shop.address_is_personal);
        assert_eq!(shop.entity_type, "个体工商户");
        assert!(shop.name.starts_with("清城区"), "{}", shop.name);
        let coop = operator_text(&mut rng, "93", 7);
        assert!(coop.name.ends_with("专业合作社"));
        let company = operator_text(&mut rng, "91", 2);
        assert!(company.name.contains("公司"), "{}", company.name);
        assert!(!company.address_is_personal);
    }
}
