//! Partner systems: `partners`, `registerPartner`, `updatePartner`, `deactivatePartner`,
//! `reactivatePartner`.

use super::{request, state};
use crate::domain::measures::Domain;
use crate::graphql::guards::{ADMIN_OR_AUDITOR, REGISTRY_ADMIN};
use crate::service::partners::{self as svc, PartnerChange, PartnerInput};
use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::partner;

/// A partner department system allowed to run checks for its domains.
pub struct Partner(pub partner::Model);

#[Object]
impl Partner {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The `sub` of the partner's tokens.
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Domains the partner may check (a token may narrow them, never widen them).
    async fn domains(&self) -> Vec<Domain> {
        svc::domains_of(&self.0)
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn deactivated_at(&self) -> Option<DateTime<Utc>> {
        self.0.deactivated_at
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(InputObject)]
pub struct RegisterPartnerInput {
    /// The `sub` its tokens will carry (no white space).
    pub subject: String,
    pub name: String,
    /// The domains it may check.
    pub domains: Vec<Domain>,
}

#[derive(InputObject)]
pub struct UpdatePartnerInput {
    /// The partner to change (its subject itself never changes).
    pub subject: String,
    /// A new name; omitted: unchanged.
    pub name: Option<String>,
    /// The domains it may check from now on; omitted: unchanged.
    pub domains: Option<Vec<Domain>>,
    /// Refused with CONFLICT unless the partner is at this version.
    pub expected_version: i32,
}

#[derive(Default)]
pub struct PartnerQuery;

#[Object]
impl PartnerQuery {
    /// Registered partners, by subject (admins and auditors).
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn partners(&self, ctx: &Context<'_>, active: Option<bool>) -> Result<Vec<Partner>> {
        let db = &state(ctx)?.db;
        Ok(svc::list(db, active)
            .await?
            .into_iter()
            .map(Partner)
            .collect())
    }
}

#[derive(Default)]
pub struct PartnerMutation;

#[Object]
impl PartnerMutation {
    /// Registers a partner system and the domains it may check (admin). Audited.
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn register_partner(
        &self,
        ctx: &Context<'_>,
        input: RegisterPartnerInput,
    ) -> Result<Partner> {
        let actor = request(ctx)?.actor();
        let state = state(ctx)?;
        let saved = svc::register(
            &state.services,
            &actor,
            PartnerInput {
                subject: input.subject,
                name: input.name,
                domains: input.domains,
            },
        )
        .await?;
        Ok(Partner(saved))
    }

    /// Deactivates a partner (admin), with the reason. Audited. Its tokens are refused
    /// from its next request on (other instances: within `auth.partner_cache_seconds`).
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn deactivate_partner(
        &self,
        ctx: &Context<'_>,
        subject: String,
        reason: String,
    ) -> Result<Partner> {
        let actor = request(ctx)?.actor();
        let state = state(ctx)?;
        let saved = svc::deactivate(&state.services, &actor, &subject, &reason).await?;
        Ok(Partner(saved))
    }

    /// Makes a deactivated partner active again (admin), with the reason. Audited. Its
    /// subject keeps its history, and its tokens are accepted again from its next request
    /// on (other instances: at once on PostgreSQL, else within `auth.partner_cache_seconds`).
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn reactivate_partner(
        &self,
        ctx: &Context<'_>,
        subject: String,
        reason: String,
    ) -> Result<Partner> {
        let actor = request(ctx)?.actor();
        let state = state(ctx)?;
        let saved = svc::reactivate(&state.services, &actor, &subject, &reason).await?;
        Ok(Partner(saved))
    }

    /// Changes a partner's name or the domains it may check (admin). Audited. Its next
    /// check is judged on the new domains; a change to nothing writes nothing.
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn update_partner(
        &self,
        ctx: &Context<'_>,
        input: UpdatePartnerInput,
    ) -> Result<Partner> {
        let actor = request(ctx)?.actor();
        let state = state(ctx)?;
        let saved = svc::update(
            &state.services,
            &actor,
            PartnerChange {
                subject: input.subject,
                name: input.name,
                domains: input.domains,
                expected_version: input.expected_version,
            },
        )
        .await?;
        Ok(Partner(saved))
    }
}
