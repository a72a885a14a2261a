//! The public list (公示) and the typical cases of a year: open to anonymous callers,
//! public fields only (`PublicListing` has no personal field at all).

use super::connection::{decode_id_cursor, forward_page, page_size};
use super::{parse_id, request, state};
use crate::auth::Role;
use crate::graphql::guards::ADMIN;
use crate::service::public::{self as svc, PublicListing, TypicalCaseView};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};

pub type PublicListingConnection = Connection<String, PublicListing>;

/// A listing an admin marked as a typical case of a year (plan task 14).
pub struct TypicalCase(pub TypicalCaseView);

#[Object]
impl TypicalCase {
    async fn id(&self) -> ID {
        ID(self.0.case.id.to_string())
    }
    async fn year(&self) -> i32 {
        self.0.case.year
    }
    async fn commentary(&self) -> &str {
        &self.0.case.commentary
    }
    async fn marked_at(&self) -> DateTime<Utc> {
        self.0.case.created_at
    }
    /// Whether the listing is in force now (the public sees only those that are).
    async fn in_force(&self) -> bool {
        self.0.in_force
    }
    async fn listing(&self) -> &PublicListing {
        &self.0.listing
    }
}

#[derive(Default)]
pub struct PublicQuery;

#[Object]
impl PublicQuery {
    /// Listings in force now, public fields only, in id order; `search` is a unified
    /// social credit code or part of an operator's name. Open to anonymous callers.
    async fn public_listings(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<PublicListingConnection> {
        let st = state(ctx)?;
        let first = page_size(first, st.settings.limits.max_page_size)?;
        let after = decode_id_cursor("public", after.as_deref())?;
        let db = st.heavy_reads_for(request(ctx)?.identity());
        let (rows, has_next) =
            svc::in_force_now(db, st.clock.now(), search.as_deref(), first, after).await?;
        Ok(forward_page(
            "public",
            rows.into_iter()
                .map(|node| (node.id.to_string(), node))
                .collect(),
            has_next,
        ))
    }

    /// The typical cases of a year. Open to anonymous callers, who see those whose
    /// listing is in force now; admins and auditors see all of them.
    async fn typical_cases(&self, ctx: &Context<'_>, year: i32) -> Result<Vec<TypicalCase>> {
        let st = state(ctx)?;
        let identity = request(ctx)?.identity();
        let all = matches!(identity.role, Role::Admin | Role::Auditor);
        Ok(
            svc::typical_cases(st.heavy_reads_for(identity), st.clock.now(), year, !all)
                .await?
                .into_iter()
                .map(TypicalCase)
                .collect(),
        )
    }
}

#[derive(Default)]
pub struct PublicMutation;

#[Object]
impl PublicMutation {
    /// Marks a decided listing as a typical case of `year` with a commentary (admin,
    /// audited); marking it again replaces the commentary.
    #[graphql(guard = "ADMIN")]
    async fn mark_typical_case(
        &self,
        ctx: &Context<'_>,
        listing_id: ID,
        year: i32,
        commentary: String,
    ) -> Result<TypicalCase> {
        let actor = request(ctx)?.actor();
        let db = &state(ctx)?.db;
        let listing_id = parse_id(&listing_id, "listing")?;
        svc::mark_typical_case(&state(ctx)?.services, &actor, listing_id, year, &commentary)
            .await?;
        let view = svc::typical_cases(db, state(ctx)?.clock.now(), year, false)
            .await?
            .into_iter()
            .find(|v| v.case.listing_id == listing_id)
            .ok_or_else(|| {
                crate::error::AppError::internal(anyhow::anyhow!(
                    "typical case of listing {listing_id} vanished after it was saved"
                ))
            })?;
        Ok(TypicalCase(view))
    }

    /// Removes a listing from the typical cases of `year` (admin, audited).
    #[graphql(guard = "ADMIN")]
    async fn unmark_typical_case(
        &self,
        ctx: &Context<'_>,
        listing_id: ID,
        year: i32,
    ) -> Result<bool> {
        let actor = request(ctx)?.actor();
        let listing_id = parse_id(&listing_id, "listing")?;
        svc::unmark_typical_case(&state(ctx)?.services, &actor, listing_id, year).await?;
        Ok(true)
    }
}
