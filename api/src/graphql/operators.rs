//! Operators: `operator(uscc)` and `upsertOperator`.

use super::{request, state};
use crate::domain::privacy::{disclose, mask_address, mask_id_number, mask_name};
use crate::graphql::guards::{ADMIN, ADMIN_OR_AUDITOR, AUTHENTICATED};
use crate::service::operators::{self as svc, OperatorInput};
use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::operator;

/// A market operator. Personal data is disclosed by role: in full to admins and
/// auditors, masked to partners, not at all to the public.
pub struct Operator(pub operator::Model);

#[Object]
impl Operator {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Unified social credit code.
    async fn uscc(&self) -> &str {
        &self.0.uscc
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn former_names(&self) -> Vec<String> {
        serde_json::from_value(self.0.former_names.clone()).unwrap_or_default()
    }
    async fn entity_type(&self) -> Option<&str> {
        self.0.entity_type.as_deref()
    }
    /// GB/T 2260 division where the operator is registered.
    async fn region_code(&self) -> &str {
        &self.0.region_code
    }
    /// Personal data: masked for partners, absent for the public.
    async fn legal_representative(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let role = request(ctx)?.identity().role;
        Ok(disclose(
            self.0.legal_representative.as_deref(),
            role,
            mask_name,
        ))
    }
    /// Personal data: masked for partners, absent for the public.
    async fn legal_rep_id_number(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let role = request(ctx)?.identity().role;
        Ok(disclose(
            self.0.legal_rep_id_number.as_deref(),
            role,
            mask_id_number,
        ))
    }
    /// A natural person's address is personal data: for partners only the operator's
    /// division and `****` (never the entered text), absent for the public.
    async fn address(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let role = request(ctx)?.identity().role;
        if self.0.address_is_personal {
            let region = &self.0.region_code;
            Ok(disclose(self.0.address.as_deref(), role, |_| {
                mask_address(region)
            }))
        } else {
            Ok(self.0.address.clone())
        }
    }
    async fn address_is_personal(&self) -> bool {
        self.0.address_is_personal
    }
    /// Why an admin accepted a code whose check digits fail (null when they hold).
    async fn check_digit_override(&self) -> Option<&str> {
        self.0.check_digit_override.as_deref()
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
    /// The operator's listings; with `asOf`, only those in force at that instant (valid
    /// time); with `knownAt`, as the registry recorded them at that instant (record time).
    /// Both: in force at `asOf` as the registry knew it at `knownAt`.
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn listings(
        &self,
        ctx: &Context<'_>,
        as_of: Option<DateTime<Utc>>,
        known_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<super::listings::Listing>> {
        use super::listings::Listing;
        let db = &state(ctx)?.db;
        if let Some(k) = known_at {
            let recorded = crate::service::history::for_operator_known_at(db, self.0.id, k).await?;
            return Ok(recorded
                .into_iter()
                .filter(|r| as_of.is_none_or(|t| r.in_force_at(t)))
                .map(|r| Listing::as_recorded(r, k))
                .collect());
        }
        let loaders = request(ctx)?.loaders(db);
        let all = super::load_one(&loaders.operator_listings, self.0.id)
            .await?
            .unwrap_or_default();
        let Some(at) = as_of else {
            return Ok(all.into_iter().map(Listing::live).collect());
        };
        // One batched load for the periods of all the operator's listings.
        let periods = loaders.periods.load_many(all.iter().map(|l| l.id)).await?;
        Ok(all
            .into_iter()
            .filter(|l| {
                periods.get(&l.id).is_some_and(|p| {
                    crate::domain::lifecycle::in_force_at(
                        &crate::service::listings::to_periods(p),
                        at,
                    )
                })
            })
            .map(Listing::live)
            .collect())
    }
}

#[derive(InputObject)]
pub struct UpsertOperatorInput {
    /// Unified social credit code; case and surrounding white space are normalised.
    pub uscc: String,
    pub name: String,
    pub entity_type: Option<String>,
    /// Defaults to positions 3-8 of the code for a new operator; an update without it
    /// keeps the recorded division.
    pub region_code: Option<String>,
    pub legal_representative: Option<String>,
    pub legal_rep_id_number: Option<String>,
    pub address: Option<String>,
    pub address_is_personal: Option<bool>,
    /// Accept a code whose check digits fail (some real older codes do), with the reason.
    pub check_digit_override_reason: Option<String>,
    /// When given, the update is refused with CONFLICT unless the operator is at this version.
    pub expected_version: Option<i32>,
}

#[derive(Default)]
pub struct OperatorQuery;

#[Object]
impl OperatorQuery {
    /// An operator by its unified social credit code (any authenticated caller).
    #[graphql(guard = "AUTHENTICATED")]
    async fn operator(&self, ctx: &Context<'_>, uscc: String) -> Result<Option<Operator>> {
        let code = crate::domain::uscc::Uscc::parse_format(&uscc).map_err(svc::uscc_error)?;
        let db = &state(ctx)?.db;
        Ok(svc::find_by_uscc(db, code.as_str()).await?.map(Operator))
    }
}

#[derive(Default)]
pub struct OperatorMutation;

#[Object]
impl OperatorMutation {
    /// Registers an operator or updates its data (admin). Audited.
    #[graphql(guard = "ADMIN")]
    async fn upsert_operator(
        &self,
        ctx: &Context<'_>,
        input: UpsertOperatorInput,
    ) -> Result<Operator> {
        let actor = request(ctx)?.actor();
        let saved = svc::upsert(
            &state(ctx)?.services,
            &actor,
            OperatorInput {
                uscc: input.uscc,
                name: input.name,
                entity_type: input.entity_type,
                region_code: input.region_code,
                legal_representative: input.legal_representative,
                legal_rep_id_number: input.legal_rep_id_number,
                address: input.address,
                address_is_personal: input.address_is_personal,
                check_digit_override_reason: input.check_digit_override_reason,
                expected_version: input.expected_version,
            },
        )
        .await?;
        Ok(Operator(saved))
    }
}
