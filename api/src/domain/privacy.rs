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

/// Keeps the address up to the county (the first 6 characters) of a natural person's address.
pub fn mask_address(address: &str) -> String {
    let kept: String = address.chars().take(6).collect();
    format!("{kept}****")
}

pub fn disclose(value: Option<&str>, role: Role, mask: fn(&str) -> String) -> Option<String> {
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
        assert_eq!(
            mask_address("广东省清远市清城区某路1号"),
            "广东省清远市****"
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
