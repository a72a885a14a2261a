//! GraphQL field guards: which roles may call a field. Anonymous callers of a protected
//! field get `UNAUTHENTICATED`; authenticated callers with the wrong role get
//! `FORBIDDEN`. The decisions are `auth::access`; this reads the caller from the
//! request's data.

use crate::auth::Role;
use crate::auth::access::{authorize, authorize_registry_admin};
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

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let identity = ctx.data::<crate::graphql::RequestContext>()?.identity();
        authorize(identity, self.allowed).map_err(Into::into)
    }
}

/// Registry-wide administration (catalogues, calendar, partners): an admin with no
/// region, or the city's. A county admin acts only on its own operators.
pub struct RegistryAdminGuard;

pub const REGISTRY_ADMIN: RegistryAdminGuard = RegistryAdminGuard;

impl Guard for RegistryAdminGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let identity = ctx.data::<crate::graphql::RequestContext>()?.identity();
        authorize_registry_admin(identity).map_err(Into::into)
    }
}
