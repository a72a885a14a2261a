//! Operators: registration and correction of the market operators that listings name.

use super::audit::{self, AuditEntry};
use super::{Actor, Services};
use crate::domain::names::normalize_name;
use crate::domain::region::{DivisionCode, scope_covers};
use crate::domain::uscc::{Uscc, UsccError};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use entity::operator;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

const MAX_TEXT: usize = 500;

#[derive(Clone, Debug, Default)]
pub struct OperatorInput {
    pub uscc: String,
    pub name: String,
    pub entity_type: Option<String>,
    pub region_code: Option<String>,
    pub legal_representative: Option<String>,
    pub legal_rep_id_number: Option<String>,
    pub address: Option<String>,
    pub address_is_personal: Option<bool>,
    /// Accepts a code whose check digits fail; audited.
    pub check_digit_override_reason: Option<String>,
    pub expected_version: Option<i32>,
}

/// Characters in a `checkDigitOverrideReason`: the one bound `upsertOperator` and
/// `import operators` both apply (an operator registered one way re-imports the other).
pub const MAX_OVERRIDE_REASON_CHARS: usize = 2_000;

/// Parses a code as admins must enter it, with a clear error for each failure.
pub fn parse_admin_uscc(
    input: &str,
    override_reason: Option<&str>,
) -> AppResult<(Uscc, Option<String>)> {
    let code = Uscc::parse_format(input).map_err(uscc_error)?;
    let reason = override_reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_OVERRIDE_REASON_CHARS) {
        return Err(AppError::bad_input_with(
            format!(
                "checkDigitOverrideReason is longer than {MAX_OVERRIDE_REASON_CHARS} characters"
            ),
            json!({ "field": "checkDigitOverrideReason" }),
        ));
    }
    match (code.check_digit_problem(), reason) {
        (None, _) => Ok((code, None)),
        (Some(_), Some(reason)) => Ok((code, Some(reason.to_string()))),
        (Some(problem), None) => Err(AppError::bad_input(format!(
            "{problem}; if this is a genuine older code, an admin may accept it with checkDigitOverrideReason"
        ))),
    }
}

pub fn uscc_error(err: UsccError) -> AppError {
    AppError::bad_input_with(
        err.to_string(),
        json!({ "field": "uscc", "reason": match err {
            UsccError::Length(_) => "LENGTH",
            UsccError::Charset { .. } => "CHARACTER_SET",
            UsccError::CheckDigit(_) => "CHECK_DIGIT",
        }}),
    )
}

fn clean_optional(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    match value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        Some(v) if v.chars().count() > MAX_TEXT => Err(AppError::bad_input(format!(
            "{field} is longer than {MAX_TEXT} characters"
        ))),
        other => Ok(other),
    }
}

pub fn snapshot(m: &operator::Model) -> serde_json::Value {
    json!({
        "id": m.id, "uscc": m.uscc, "name": m.name, "former_names": m.former_names,
        "entity_type": m.entity_type, "region_code": m.region_code,
        "legal_representative": m.legal_representative, "legal_rep_id_number": m.legal_rep_id_number,
        "address": m.address, "address_is_personal": m.address_is_personal,
        "check_digit_override": m.check_digit_override, "version": m.version,
    })
}

pub async fn find_by_uscc<C: ConnectionTrait>(
    db: &C,
    uscc: &str,
) -> AppResult<Option<operator::Model>> {
    Ok(operator::Entity::find()
        .filter(operator::Column::Uscc.eq(uscc))
        .one(db)
        .await?)
}

/// Creates the operator or updates it (a changed name is kept among the former names).
pub async fn upsert(
    services: &Services,
    actor: &Actor,
    input: OperatorInput,
) -> AppResult<operator::Model> {
    let (tx, at) = audit::begin_write_at(&services.db, &services.clock).await?;
    let saved = upsert_in(&tx, actor, at, input, None).await?;
    tx.commit().await?;
    Ok(saved)
}

/// [`upsert`] inside a write transaction (from `audit::begin_write`) that the caller
/// commits, acting at `now` (the registry's clock); `note` is added to the audit event's
/// reason (an import names its file, batch and row there).
pub async fn upsert_in(
    tx: &sea_orm::DatabaseTransaction,
    actor: &Actor,
    now: DateTime<Utc>,
    input: OperatorInput,
    note: Option<String>,
) -> AppResult<operator::Model> {
    let mut input = input;
    // An update keeps what it does not restate of the division and the override: the
    // division an operator is registered in is often not its code's (it moved), and
    // defaulting to the code's would move it to another county (or refuse its own
    // county's admin); a code accepted with an override stays accepted.
    let existing = match Uscc::parse_format(&input.uscc) {
        Ok(code) => find_by_uscc(tx, code.as_str()).await?,
        // check_input names the format error.
        Err(_) => None,
    };
    if let Some(current) = &existing {
        if input.region_code.is_none() {
            input.region_code = Some(current.region_code.clone());
        }
        if input
            .check_digit_override_reason
            .as_deref()
            .is_none_or(|r| r.trim().is_empty())
        {
            input.check_digit_override_reason = current.check_digit_override.clone();
        }
    }
    let expected_version = input.expected_version;
    let address_is_personal = input.address_is_personal;
    let Checked {
        code,
        override_reason,
        name,
        region,
        entity_type,
        legal_rep,
        legal_rep_id,
        address,
    } = check_input(actor, input)?;
    let (saved, before, action) = match existing {
        Some(current) => {
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(AppError::Conflict(format!(
                    "operator {} is at version {}, not {expected}: reload and retry",
                    current.uscc, current.version
                )));
            }
            super::ensure_scope(actor, &current)?;
            let before = snapshot(&current);
            let mut former: Vec<String> =
                serde_json::from_value(current.former_names.clone()).unwrap_or_default();
            if current.name != name && !former.contains(&current.name) {
                former.push(current.name.clone());
            }
            let mut active: operator::ActiveModel = current.clone().into();
            active.name = Set(name.clone());
            active.name_normalized = Set(normalize_name(&name));
            active.former_names = Set(json!(former));
            active.entity_type = Set(entity_type);
            active.region_code = Set(region);
            active.legal_representative = Set(legal_rep);
            active.legal_rep_id_number = Set(legal_rep_id);
            active.address = Set(address);
            active.address_is_personal =
                Set(address_is_personal.unwrap_or(current.address_is_personal));
            active.check_digit_override = Set(override_reason.or(current.check_digit_override));
            active.version = Set(current.version + 1);
            active.updated_at = Set(now);
            (active.update(tx).await?, Some(before), "operator.update")
        }
        None => {
            let checked = Checked {
                code,
                override_reason,
                name,
                region,
                entity_type,
                legal_rep,
                legal_rep_id,
                address,
            };
            let model = checked
                .new_operator(address_is_personal, now)
                .insert(tx)
                .await?;
            (model, None, "operator.create")
        }
    };
    let entry = audit_entry(&saved, action, before, note);
    audit::record(tx, actor, now, entry).await?;
    Ok(saved)
}

/// The audit event of an operator's creation or update; `note` follows the check-digit
/// override's reason, if any.
pub(crate) fn audit_entry(
    saved: &operator::Model,
    action: &'static str,
    before: Option<serde_json::Value>,
    note: Option<String>,
) -> AuditEntry {
    let reason = match (saved.check_digit_override.clone(), note) {
        (Some(r), Some(n)) => Some(format!("{r}; {n}")),
        (r, n) => r.or(n),
    };
    AuditEntry::new(action, "operator", saved.id)
        .before(before)
        .after(Some(snapshot(saved)))
        .reason(reason)
}

/// An operator's input once its rules hold (code, name, division in the actor's scope,
/// text lengths).
pub(crate) struct Checked {
    code: Uscc,
    override_reason: Option<String>,
    name: String,
    region: String,
    entity_type: Option<String>,
    legal_rep: Option<String>,
    legal_rep_id: Option<String>,
    address: Option<String>,
}

impl Checked {
    pub(crate) fn uscc(&self) -> &str {
        self.code.as_str()
    }

    /// The row of a new operator (version 1).
    pub(crate) fn new_operator(
        self,
        address_is_personal: Option<bool>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> operator::ActiveModel {
        operator::ActiveModel {
            uscc: Set(self.code.into_string()),
            name_normalized: Set(normalize_name(&self.name)),
            name: Set(self.name),
            former_names: Set(json!([])),
            entity_type: Set(self.entity_type),
            region_code: Set(self.region),
            legal_representative: Set(self.legal_rep),
            legal_rep_id_number: Set(self.legal_rep_id),
            address: Set(self.address),
            address_is_personal: Set(address_is_personal.unwrap_or(false)),
            check_digit_override: Set(self.override_reason),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
    }
}

/// The rules of [`upsert`] that need no database: the code (both check digits, or an
/// override reason), the name, the division and the actor's region scope, text lengths.
pub(crate) fn check_input(actor: &Actor, input: OperatorInput) -> AppResult<Checked> {
    let (code, override_reason) =
        parse_admin_uscc(&input.uscc, input.check_digit_override_reason.as_deref())?;
    let name = input.name.trim().to_string();
    if name.is_empty() {
        return Err(AppError::bad_input("name must not be empty"));
    }
    if name.chars().count() > 200 {
        return Err(AppError::bad_input("name is longer than 200 characters"));
    }
    let region = match input.region_code.as_deref() {
        Some(r) => DivisionCode::parse("regionCode", r)?.into_string(),
        None => code.division().to_string(),
    };
    let scope = actor.identity.region.as_deref();
    if !scope_covers(scope, &region) {
        return Err(AppError::Forbidden(format!(
            "an admin of region {} may not act on operators registered in {region}",
            scope.unwrap_or("-")
        )));
    }
    Ok(Checked {
        code,
        override_reason,
        name,
        region,
        entity_type: clean_optional("entityType", input.entity_type)?,
        legal_rep: clean_optional("legalRepresentative", input.legal_representative)?,
        legal_rep_id: clean_optional("legalRepIdNumber", input.legal_rep_id_number)?,
        address: clean_optional("address", input.address)?,
    })
}
