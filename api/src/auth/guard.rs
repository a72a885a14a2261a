//! Field guards: which roles may call a field. Anonymous callers of a protected field get
//! `UNAUTHENTICATED`; authenticated callers with the wrong role get `FORBIDDEN`.

use super::{Identity, Role};
use crate::error::AppError;
use async_graphql::{Context, Guard, Result};

pub struct RoleGuard {
    allowed: &'static [Role],
}

impl RoleGuard {
    pub const fn new(allowed: &'static [Role]) -> Self {
        Self { allowed }
    }
}

pub const ADMIN: RoleGuard = RoleGuard::new(&[Role::Admin]);
pub const ADMIN_OR_AUDITOR: RoleGuard = RoleGuard::new(&[Role::Admin, Role::Auditor]);
pub const AUTHENTICATED: RoleGuard = RoleGuard::new(&[Role::Admin, Role::Auditor, Role::Partner]);

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

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let identity = ctx.data::<crate::graphql::RequestContext>()?.identity();
        authorize(identity, self.allowed).map_err(Into::into)
    }
}

/// Registry-wide administration (catalogues, calendar, partners): an admin with no
/// region, or a city-level one. A county admin acts only on its own operators.
pub struct RegistryAdminGuard;

pub const REGISTRY_ADMIN: RegistryAdminGuard = RegistryAdminGuard;

/// The decision, as a pure function.
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

impl Guard for RegistryAdminGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let identity = ctx.data::<crate::graphql::RequestContext>()?.identity();
        authorize_registry_admin(identity).map_err(Into::into)
    }
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
