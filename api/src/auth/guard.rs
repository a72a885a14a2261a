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
