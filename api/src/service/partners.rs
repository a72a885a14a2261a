//! Partner department systems: registration, changes to a registration, deactivation and
//! reactivation (admins, audited). Every write bumps the partner's `version` and goes
//! through `commit_partner_change`, so every instance drops its cached registration and
//! judges the partner's next request on the new one.

use super::Actor;
use super::audit::{self, AuditEntry};
use crate::auth::partners::stored_domains;
use crate::domain::measures::Domain;
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use entity::partner;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

const MAX_SUBJECT: usize = 100;
const MAX_NAME: usize = 200;
const MAX_REASON: usize = 2_000;

#[derive(Clone, Debug)]
pub struct PartnerInput {
    pub subject: String,
    pub name: String,
    pub domains: Vec<Domain>,
}

/// A subject is what a token's `sub` carries: printable, no white space.
pub fn validate_subject(subject: &str) -> AppResult<String> {
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(AppError::bad_input("subject must not be empty"));
    }
    if subject.chars().count() > MAX_SUBJECT {
        return Err(AppError::bad_input(format!(
            "subject is longer than {MAX_SUBJECT} characters"
        )));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::bad_input(
            "subject must not contain white space or control characters",
        ));
    }
    Ok(subject.to_string())
}

/// The domains as stored: each once, in the catalogue's order.
pub fn normalize_domains(domains: &[Domain]) -> AppResult<Vec<Domain>> {
    let list: Vec<Domain> = Domain::ALL
        .into_iter()
        .filter(|d| domains.contains(d))
        .collect();
    if list.is_empty() {
        return Err(AppError::bad_input(
            "a partner needs at least one domain it may check",
        ));
    }
    Ok(list)
}

pub fn snapshot(m: &partner::Model) -> serde_json::Value {
    json!({
        "id": m.id, "subject": m.subject, "name": m.name, "domains": m.domains,
        "active": m.active, "deactivated_at": m.deactivated_at, "version": m.version,
    })
}

pub fn domains_of(m: &partner::Model) -> Vec<Domain> {
    stored_domains(&m.domains)
}

/// A partner's display name: trimmed, not empty, at most [`MAX_NAME`] characters.
fn clean_name(name: &str) -> AppResult<String> {
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(AppError::bad_input("name must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(AppError::bad_input(format!(
            "name is longer than {MAX_NAME} characters"
        )));
    }
    Ok(name)
}

/// The reason of a deactivation or reactivation (`what`: "deactivate", "reactivate").
fn clean_reason(reason: &str, what: &str) -> AppResult<String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::bad_input(format!(
            "a reason is required to {what} a partner"
        )));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(AppError::bad_input(format!(
            "reason is longer than {MAX_REASON} characters"
        )));
    }
    Ok(reason.to_string())
}

/// The stored form of a domain list.
fn domains_json(domains: &[Domain]) -> serde_json::Value {
    json!(domains.iter().map(|d| d.code()).collect::<Vec<_>>())
}

/// The partner with `subject`, read in the write transaction.
async fn find_for_update(
    tx: &sea_orm::DatabaseTransaction,
    subject: &str,
) -> AppResult<partner::Model> {
    partner::Entity::find()
        .filter(partner::Column::Subject.eq(subject))
        .one(tx)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no partner with subject '{subject}'")))
}

pub async fn register(
    services: &super::Services,
    actor: &Actor,
    input: PartnerInput,
) -> AppResult<partner::Model> {
    let subject = validate_subject(&input.subject)?;
    let name = clean_name(&input.name)?;
    let domains = normalize_domains(&input.domains)?;

    let (tx, now) = audit::begin_write_at(&services.db, &services.clock).await?;
    if let Some(existing) = partner::Entity::find()
        .filter(partner::Column::Subject.eq(subject.as_str()))
        .one(&tx)
        .await?
    {
        return Err(AppError::Conflict(format!(
            "a partner with subject '{}' is already registered ({})",
            existing.subject,
            if existing.active {
                "active"
            } else {
                "deactivated"
            }
        )));
    }
    let saved = partner::ActiveModel {
        subject: Set(subject),
        name: Set(name),
        domains: Set(domains_json(&domains)),
        active: Set(true),
        deactivated_at: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry::new("partner.register", "partner", saved.id).after(Some(snapshot(&saved))),
    )
    .await?;
    services.commit_partner_change(tx, &saved.subject).await?;
    Ok(saved)
}

pub async fn deactivate(
    services: &super::Services,
    actor: &Actor,
    subject: &str,
    reason: &str,
) -> AppResult<partner::Model> {
    set_active(services, actor, subject, reason, false).await
}

/// Makes a deactivated partner active again, with the reason: its subject keeps its
/// receipts, check records and feedback, and its tokens are accepted again from its next
/// request on (they were refused by the registration, never revoked).
pub async fn reactivate(
    services: &super::Services,
    actor: &Actor,
    subject: &str,
    reason: &str,
) -> AppResult<partner::Model> {
    set_active(services, actor, subject, reason, true).await
}

/// Deactivates (`active` false) or reactivates a partner, audited with the reason; every
/// instance drops its cached registration at the commit.
async fn set_active(
    services: &super::Services,
    actor: &Actor,
    subject: &str,
    reason: &str,
    active: bool,
) -> AppResult<partner::Model> {
    let (verb, state, action) = if active {
        ("reactivate", "active", "partner.reactivate")
    } else {
        ("deactivate", "deactivated", "partner.deactivate")
    };
    let subject = subject.trim();
    let reason = clean_reason(reason, verb)?;
    let (tx, now) = audit::begin_write_at(&services.db, &services.clock).await?;
    let current = find_for_update(&tx, subject).await?;
    if current.active == active {
        return Err(AppError::Conflict(format!(
            "partner '{subject}' is already {state}"
        )));
    }
    let change = Audited {
        action,
        reason: Some(reason),
    };
    save_change(services, tx, actor, now, current, change, |model| {
        model.active = Set(active);
        model.deactivated_at = Set((!active).then_some(now));
    })
    .await
}

/// How a change to a partner's registration is audited.
struct Audited {
    action: &'static str,
    reason: Option<String>,
}

/// Writes `current` with the fields `set` changes and its version bumped, audited with
/// its state before and after, and commits: every instance drops its cached registration
/// at the commit.
async fn save_change(
    services: &super::Services,
    tx: sea_orm::DatabaseTransaction,
    actor: &Actor,
    now: DateTime<Utc>,
    current: partner::Model,
    audited: Audited,
    set: impl FnOnce(&mut partner::ActiveModel),
) -> AppResult<partner::Model> {
    let before = snapshot(&current);
    let mut model: partner::ActiveModel = current.clone().into();
    set(&mut model);
    model.version = Set(current.version + 1);
    model.updated_at = Set(now);
    let saved = model.update(&tx).await?;
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry::new(audited.action, "partner", saved.id)
            .before(Some(before))
            .after(Some(snapshot(&saved)))
            .reason(audited.reason),
    )
    .await?;
    services.commit_partner_change(tx, &saved.subject).await?;
    Ok(saved)
}

/// A change to a partner's registration: what is `None` stays as it is.
#[derive(Clone, Debug)]
pub struct PartnerChange {
    pub subject: String,
    pub name: Option<String>,
    pub domains: Option<Vec<Domain>>,
    /// Refused with CONFLICT unless the partner is at this version.
    pub expected_version: i32,
}

/// Changes a partner's name or domains (its subject is what its tokens carry and never
/// changes). Narrowed domains hold from its next check on: a token may narrow the
/// registration, never widen it. A change to nothing writes nothing.
pub async fn update(
    services: &super::Services,
    actor: &Actor,
    change: PartnerChange,
) -> AppResult<partner::Model> {
    let subject = change.subject.trim();
    let name = change.name.as_deref().map(clean_name).transpose()?;
    let domains = change
        .domains
        .as_deref()
        .map(normalize_domains)
        .transpose()?;
    if name.is_none() && domains.is_none() {
        return Err(AppError::bad_input("give a name or domains to change"));
    }
    let (tx, now) = audit::begin_write_at(&services.db, &services.clock).await?;
    let current = find_for_update(&tx, subject).await?;
    if current.version != change.expected_version {
        return Err(AppError::Conflict(format!(
            "partner '{subject}' is at version {}, not {}: reload and retry",
            current.version, change.expected_version
        )));
    }
    let name = name.unwrap_or_else(|| current.name.clone());
    let domains = domains.map_or_else(|| current.domains.clone(), |d| domains_json(&d));
    if name == current.name && domains == current.domains {
        return Ok(current);
    }
    let change = Audited {
        action: "partner.update",
        reason: None,
    };
    save_change(services, tx, actor, now, current, change, |model| {
        model.name = Set(name);
        model.domains = Set(domains);
    })
    .await
}

pub async fn list(db: &DatabaseConnection, active: Option<bool>) -> AppResult<Vec<partner::Model>> {
    let mut query = partner::Entity::find();
    if let Some(active) = active {
        query = query.filter(partner::Column::Active.eq(active));
    }
    Ok(query.order_by_asc(partner::Column::Subject).all(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_trimmed_and_need_no_spaces() {
        assert_eq!(
            validate_subject("  gov-procurement ").unwrap(),
            "gov-procurement"
        );
        assert!(validate_subject("").is_err());
        assert!(validate_subject("two words").is_err());
        assert!(validate_subject(&"x".repeat(101)).is_err());
    }

    #[test]
    fn domains_are_deduplicated_in_catalogue_order() {
        assert_eq!(
            normalize_domains(&[Domain::Bidding, Domain::Procurement, Domain::Bidding]).unwrap(),
            vec![Domain::Procurement, Domain::Bidding]
        );
        assert!(normalize_domains(&[]).is_err());
    }
}
