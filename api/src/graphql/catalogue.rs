//! Catalogues: lists, measures, violation categories and the working-day calendar.

use super::{request, state};
use crate::domain::measures::{Domain, Effect};
use crate::graphql::guards::{AUTHENTICATED, REGISTRY_ADMIN};
use crate::service::{calendar, catalogue as svc};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{credit_list, measure, violation_category};

/// A punishment measure from the national basic list.
pub struct Measure(pub measure::Model);

#[Object]
impl Measure {
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn domain(&self) -> Option<Domain> {
        Some(self.0.domain.into())
    }
    async fn effect(&self) -> Option<Effect> {
        Some(self.0.effect.into())
    }
    async fn legal_basis(&self) -> &str {
        &self.0.legal_basis
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// When a listing first used this measure. From then on `upsertMeasure` keeps its
    /// domain and effect (a new effect is a new code); null while no listing has used it.
    async fn first_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_used_at
    }
}

/// A list of dishonest parties and its rules.
pub struct CreditList(pub credit_list::Model);

#[Object]
impl CreditList {
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn legal_basis(&self) -> &str {
        &self.0.legal_basis
    }
    /// Listing period in months unless a law sets a longer one.
    async fn default_period_months(&self) -> i32 {
        self.0.default_period_months
    }
    async fn defence_working_days(&self) -> i32 {
        self.0.defence_working_days
    }
    async fn publicity_stop_working_days(&self) -> i32 {
        self.0.publicity_stop_working_days
    }
    async fn repair_min_months(&self) -> i32 {
        self.0.repair_min_months
    }
    async fn repair_decision_working_days(&self) -> i32 {
        self.0.repair_decision_working_days
    }
    /// RESUME or RESTART: what a revoked (fraudulent) repair does to the period.
    async fn repair_revocation_policy(&self) -> &str {
        &self.0.repair_revocation_policy
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn default_measures(&self, ctx: &Context<'_>) -> Result<Vec<Measure>> {
        let db = &state(ctx)?.db;
        Ok(svc::default_measures(db, self.0.id)
            .await?
            .into_iter()
            .map(Measure)
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct ViolationCategory {
    pub code: String,
    pub name: String,
    pub article: String,
}

impl From<violation_category::Model> for ViolationCategory {
    fn from(m: violation_category::Model) -> Self {
        Self {
            code: m.code,
            name: m.name,
            article: m.article,
        }
    }
}

#[derive(SimpleObject)]
pub struct CalendarYear {
    pub year: i32,
    pub source: String,
    pub loaded_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct CatalogueQuery;

#[Object]
impl CatalogueQuery {
    /// The measures catalogue, optionally for one domain.
    #[graphql(guard = "AUTHENTICATED")]
    async fn measures(&self, ctx: &Context<'_>, domain: Option<Domain>) -> Result<Vec<Measure>> {
        let db = &state(ctx)?.db;
        Ok(svc::measures(db, domain)
            .await?
            .into_iter()
            .map(Measure)
            .collect())
    }

    /// The lists and their rules.
    #[graphql(guard = "AUTHENTICATED")]
    async fn lists(&self, ctx: &Context<'_>) -> Result<Vec<CreditList>> {
        let db = &state(ctx)?.db;
        Ok(svc::lists(db).await?.into_iter().map(CreditList).collect())
    }

    /// Violation categories of Order 44 Arts. 5-10.
    #[graphql(guard = "AUTHENTICATED")]
    async fn violation_categories(&self, ctx: &Context<'_>) -> Result<Vec<ViolationCategory>> {
        let db = &state(ctx)?.db;
        Ok(svc::violation_categories(db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Years whose working-day calendar is loaded.
    #[graphql(guard = "AUTHENTICATED")]
    async fn calendar_years(&self, ctx: &Context<'_>) -> Result<Vec<CalendarYear>> {
        use sea_orm::{EntityTrait, QueryOrder};
        let db = &state(ctx)?.db;
        let rows = entity::calendar_year::Entity::find()
            .order_by_asc(entity::calendar_year::Column::Year)
            .all(db)
            .await
            .map_err(crate::error::AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|y| CalendarYear {
                year: y.year,
                source: y.source,
                loaded_at: y.loaded_at,
            })
            .collect())
    }

    /// The date `days` working days after `from` (the start day not counted).
    #[graphql(guard = "AUTHENTICATED")]
    async fn add_working_days(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        days: i32,
    ) -> Result<NaiveDate> {
        let db = &state(ctx)?.db;
        let cal = calendar::load(db).await?;
        let days = u32::try_from(days)
            .map_err(|_| crate::error::AppError::bad_input("days must not be negative"))?;
        Ok(cal
            .add_working_days(from, days)
            .map_err(calendar::calendar_error)?)
    }
}

#[derive(InputObject)]
pub struct MeasureInput {
    pub code: String,
    pub name: String,
    pub domain: Domain,
    pub effect: Effect,
    pub legal_basis: String,
    #[graphql(default = true)]
    pub active: bool,
}

#[derive(InputObject)]
pub struct ListInput {
    pub code: String,
    pub name: Option<String>,
    pub legal_basis: Option<String>,
    pub default_period_months: Option<i32>,
    pub defence_working_days: Option<i32>,
    pub publicity_stop_working_days: Option<i32>,
    pub repair_min_months: Option<i32>,
    pub repair_decision_working_days: Option<i32>,
    pub repair_revocation_policy: Option<RepairRevocationPolicy>,
    pub default_measure_codes: Option<Vec<String>>,
    pub active: Option<bool>,
    pub expected_version: Option<i32>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum RepairRevocationPolicy {
    /// The listing resumes for the time it had left.
    Resume,
    /// The period is counted again from the revocation.
    Restart,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum CalendarDayKind {
    /// A weekday off.
    Holiday,
    /// A weekend day worked (调休).
    Workday,
}

#[derive(InputObject)]
pub struct CalendarDayInput {
    pub date: NaiveDate,
    pub kind: CalendarDayKind,
    pub name: String,
}

#[derive(Default)]
pub struct CatalogueMutation;

#[Object]
impl CatalogueMutation {
    /// Adds a measure to the catalogue or edits one (admin; audited). Once a listing has
    /// used a measure (`firstUsedAt`), its domain and effect are fixed: changing either
    /// is refused with CONFLICT, and a new effect needs a new code.
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn upsert_measure(&self, ctx: &Context<'_>, input: MeasureInput) -> Result<Measure> {
        let actor = request(ctx)?.actor();
        let saved = svc::upsert_measure(
            &state(ctx)?.services,
            &actor,
            svc::MeasureInput {
                code: input.code,
                name: input.name,
                domain: input.domain,
                effect: input.effect,
                legal_basis: input.legal_basis,
                active: input.active,
            },
        )
        .await?;
        Ok(Measure(saved))
    }

    /// Creates a list or edits its rules and default measures (admin; audited).
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn upsert_list(&self, ctx: &Context<'_>, input: ListInput) -> Result<CreditList> {
        let actor = request(ctx)?.actor();
        let saved = svc::upsert_list(
            &state(ctx)?.services,
            &actor,
            svc::ListInput {
                code: input.code,
                name: input.name,
                legal_basis: input.legal_basis,
                default_period_months: input.default_period_months,
                defence_working_days: input.defence_working_days,
                publicity_stop_working_days: input.publicity_stop_working_days,
                repair_min_months: input.repair_min_months,
                repair_decision_working_days: input.repair_decision_working_days,
                repair_revocation_policy: input.repair_revocation_policy.map(|p| match p {
                    RepairRevocationPolicy::Resume => "RESUME".to_string(),
                    RepairRevocationPolicy::Restart => "RESTART".to_string(),
                }),
                default_measure_codes: input.default_measure_codes,
                active: input.active,
                expected_version: input.expected_version,
            },
        )
        .await?;
        Ok(CreditList(saved))
    }

    /// Adds or renames a violation category (admin; audited).
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn upsert_violation_category(
        &self,
        ctx: &Context<'_>,
        code: String,
        name: String,
        article: String,
    ) -> Result<ViolationCategory> {
        let actor = request(ctx)?.actor();
        Ok(
            svc::upsert_category(&state(ctx)?.services, &actor, &code, &name, &article)
                .await?
                .into(),
        )
    }

    /// Loads (or replaces) a year's working-day calendar from its State Council notice
    /// (admin; audited). `days` are the exceptions to the Monday-Friday week.
    #[graphql(guard = "REGISTRY_ADMIN")]
    async fn load_calendar_year(
        &self,
        ctx: &Context<'_>,
        year: i32,
        source: String,
        days: Vec<CalendarDayInput>,
    ) -> Result<CalendarYear> {
        let actor = request(ctx)?.actor();
        let db = &state(ctx)?.db;
        let days = days
            .into_iter()
            .map(|d| calendar::CalendarDayInput {
                day: d.date,
                is_working_day: d.kind == CalendarDayKind::Workday,
                name: d.name,
            })
            .collect();
        let loaded_at =
            calendar::load_year(db, &actor, &state(ctx)?.clock, year, &source, days).await?;
        Ok(CalendarYear {
            year,
            source,
            loaded_at,
        })
    }
}
