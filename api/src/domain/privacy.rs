//! Personal data by role: legal representatives' names and ID numbers and natural
//! persons' addresses are shown to admins and auditors, masked for partners and
//! absent for the public.

use crate::auth::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disclosure {
    Full,
    Masked,
    Hidden,
}

pub fn disclosure_for(role: Role) -> Disclosure {
    match role {
        Role::Admin | Role::Auditor => Disclosure::Full,
        Role::Partner => Disclosure::Masked,
        Role::Anonymous => Disclosure::Hidden,
    }
}

/// Keeps the first character of a name: `张三丰` → `张**`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// Keeps the first 6 and last 4 characters of an identity number.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 6 || i >= chars.len() - 4 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// Province-level divisions of GB/T 2260 by their first two digits: stable names, so an
/// operator registered outside Qingyuan can still be placed in its province.
const PROVINCES: &[(&str, &str)] = &[
    ("11", "北京市"),
    ("12", "天津市"),
    ("13", "河北省"),
    ("14", "山西省"),
    ("15", "内蒙古自治区"),
    ("21", "辽宁省"),
    ("22", "吉林省"),
    ("23", "黑龙江省"),
    ("31", "上海市"),
    ("32", "江苏省"),
    ("33", "浙江省"),
    ("34", "安徽省"),
    ("35", "福建省"),
    ("36", "江西省"),
    ("37", "山东省"),
    ("41", "河南省"),
    ("42", "湖北省"),
    ("43", "湖南省"),
    ("44", "广东省"),
    ("45", "广西壮族自治区"),
    ("46", "海南省"),
    ("50", "重庆市"),
    ("51", "四川省"),
    ("52", "贵州省"),
    ("53", "云南省"),
    ("54", "西藏自治区"),
    ("61", "陕西省"),
    ("62", "甘肃省"),
    ("63", "青海省"),
    ("64", "宁夏回族自治区"),
    ("65", "新疆维吾尔自治区"),
    ("71", "台湾省"),
    ("81", "香港特别行政区"),
    ("82", "澳门特别行政区"),
];

/// The masked form of a natural person's address: the operator's registered division
/// (`region_code`) by name, then `****`. Built from the code and never from the address
/// text: addresses are stored as entered, so no fixed number of leading characters is
/// "up to the county" (`清城区某路1号` would keep the road and house number, a short
/// address would be shown whole). A Qingyuan division is named in full
/// (`广东省清远市清城区****`); any other code only as far as it can be named reliably
/// (its province, `广东省` for `440103`), and an unknown code gives `****` alone.
pub fn mask_address(region_code: &str) -> String {
    use crate::domain::region::{CITY_CODE, is_division_code, qingyuan_name, scope_covers};
    let city_name = qingyuan_name(CITY_CODE).unwrap_or_default();
    let place = if !is_division_code(region_code) {
        String::new()
    } else if let Some(name) = qingyuan_name(region_code) {
        if region_code == CITY_CODE {
            format!("广东省{name}")
        } else {
            format!("广东省{city_name}{name}")
        }
    } else if scope_covers(Some(CITY_CODE), region_code) {
        // A code of the city that is not one of its known counties: the city, no further.
        format!("广东省{city_name}")
    } else {
        PROVINCES
            .iter()
            .find(|(p, _)| region_code.starts_with(p))
            .map_or(String::new(), |(_, n)| (*n).to_string())
    };
    format!("{place}****")
}

/// `value` as `role` may see it; `mask` makes the partner's form (it gets the stored value,
/// which it may ignore, as the address mask does).
pub fn disclose(
    value: Option<&str>,
    role: Role,
    mask: impl FnOnce(&str) -> String,
) -> Option<String> {
    match (disclosure_for(role), value) {
        (_, None) | (Disclosure::Hidden, _) => None,
        (Disclosure::Full, Some(v)) => Some(v.to_string()),
        (Disclosure::Masked, Some(v)) => Some(mask(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_little() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_id_number("441802199001011234"), "441802********1234");
        assert_eq!(mask_id_number("12345"), "*****");
    }

    #[test]
    fn an_address_is_masked_to_the_division_never_its_text() {
        assert_eq!(mask_address("441802"), "广东省清远市清城区****");
        assert_eq!(mask_address("441800"), "广东省清远市****");
        assert_eq!(mask_address("441881"), "广东省清远市英德市****");
        // A Qingyuan code that is none of the known counties: the city only.
        assert_eq!(mask_address("441899"), "广东省清远市****");
        // Outside Qingyuan: the province, which GB/T 2260 names by the first two digits.
        assert_eq!(mask_address("440103"), "广东省****");
        assert_eq!(mask_address("110101"), "北京市****");
        // Nothing that can be named reliably: the mask alone.
        assert_eq!(mask_address("990000"), "****");
        assert_eq!(mask_address("44180X"), "****");
        assert_eq!(mask_address(""), "****");
    }

    #[test]
    fn a_partner_gets_no_text_of_the_entered_address() {
        for address in [
            "清城区某路1号",
            "某路1号",
            "凤城街道XX村3号",
            "广东省清远市清城区某路1号",
        ] {
            let shown = disclose(Some(address), Role::Partner, |_| mask_address("441802"));
            assert_eq!(
                shown.as_deref(),
                Some("广东省清远市清城区****"),
                "{address}"
            );
        }
        let full = disclose(Some("某路1号"), Role::Admin, |_| mask_address("441802"));
        assert_eq!(full.as_deref(), Some("某路1号"));
        assert_eq!(
            disclose(Some("某路1号"), Role::Anonymous, |_| mask_address(
                "441802"
            )),
            None
        );
    }

    #[test]
    fn disclosure_follows_role() {
        assert_eq!(
            disclose(Some("张三"), Role::Auditor, mask_name).as_deref(),
            Some("张三")
        );
        assert_eq!(
            disclose(Some("张三"), Role::Partner, mask_name).as_deref(),
            Some("张*")
        );
        assert_eq!(disclose(Some("张三"), Role::Anonymous, mask_name), None);
    }
}
