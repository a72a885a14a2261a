//! The yearly report (admins and auditors; an admin limited to a division sees it).

use super::{request, state};
use crate::graphql::guards::ADMIN_OR_AUDITOR;
use crate::service::report::{self, YearReport};
use async_graphql::{Context, Object, Result};

#[derive(Default)]
pub struct ReportQuery;

#[Object]
impl ReportQuery {
    /// The year's figures per county-level division: listings decided, removals by
    /// reason, repair applications and the on-time rate of their decisions, checks by
    /// domain and decision, partner feedback by measure. `region` limits it to one
    /// division (a city code covers its counties).
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn report(
        &self,
        ctx: &Context<'_>,
        year: i32,
        region: Option<String>,
    ) -> Result<YearReport> {
        let scope = request(ctx)?.identity().region.clone();
        let region = report::effective_region(scope.as_deref(), region.as_deref())?;
        let db = state(ctx)?.heavy_reads(false);
        Ok(report::yearly(db, state(ctx)?.clock.now(), year, region.as_deref()).await?)
    }
}
