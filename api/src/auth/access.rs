//! Who may call what, as pure functions over the caller's identity. The GraphQL field
//! guards (`graphql::guards`) and any other transport ask these.

use super::{Identity, Role};
use crate::error::AppError;

/// The decision, as a pure function.
pub fn authorize(identity: &Identity, allowed: &[Role]) -> Result<(), AppError> {
    if allowed.contains(&identity.role) {
        Ok(())
    } else if identity.is_anonymous() {
        Err(AppError::Unauthenticated(
            "this operation needs a bearer token".into(),
        ))
    } else {
        Err(AppError::Forbidden(format!(
            "the {} role may not perform this operation",
            identity.role.as_str()
        )))
    }
}

/// Registry-wide administration (catalogues, calendar, partners): an admin with no
/// region, or the city's (`domain::region::is_registry_wide`).
pub fn authorize_registry_admin(identity: &Identity) -> Result<(), AppError> {
    authorize(identity, &[Role::Admin])?;
    let scope = identity.region.as_deref();
    if crate::domain::region::is_registry_wide(scope) {
        return Ok(());
    }
    Err(AppError::Forbidden(format!(
        "an admin limited to division {} may not change registry-wide data (only the city, {}, or no region)",
        scope.unwrap_or("-"),
        crate::domain::region::CITY_CODE
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(region: Option<&str>) -> Identity {
        Identity {
            subject: "a".into(),
            role: Role::Admin,
            domains: Vec::new(),
            region: region.map(Into::into),
            token_id: None,
        }
    }

    #[test]
    fn registry_admin_is_an_unscoped_or_city_admin() {
        assert!(authorize_registry_admin(&admin(None)).is_ok());
        assert!(authorize_registry_admin(&admin(Some("441800"))).is_ok());
        assert!(authorize_registry_admin(&admin(Some("441802"))).is_err());
        assert!(authorize_registry_admin(&admin(Some("441900"))).is_err());
        assert!(authorize_registry_admin(&admin(Some("000000"))).is_err());
        let mut auditor = admin(None);
        auditor.role = Role::Auditor;
        assert!(authorize_registry_admin(&auditor).is_err());
        assert!(matches!(
            authorize_registry_admin(&Identity::anonymous()),
            Err(AppError::Unauthenticated(_))
        ));
    }
}
