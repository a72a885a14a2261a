//! The whole domain's tables, designed up front; later behaviour comes as new migrations.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Instants are stored as `timestamp with time zone` (text in RFC 3339 on SQLite,
/// which orders correctly because every instant is written in UTC).
fn instant(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(name)
}
fn instant_null(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(name)
}

fn index(table: &'static str, name: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(*c);
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("operators")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("uscc", 18))
                .col(string("name"))
                .col(string("name_normalized"))
                .col(json_binary("former_names"))
                .col(string_null("entity_type"))
                .col(string_len("region_code", 6))
                .col(string_null("legal_representative"))
                .col(string_null("legal_rep_id_number"))
                .col(string_null("address"))
                .col(boolean("address_is_personal"))
                .col(text_null("check_digit_override"))
                .col(integer("version"))
                .col(instant("created_at"))
                .col(instant("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "operators",
            "idx_operators_name_normalized",
            &["name_normalized"],
        ))
        .await?;
        m.create_index(index("operators", "idx_operators_region", &["region_code"]))
            .await?;

        m.create_table(
            Table::create()
                .table("credit_lists")
                .col(big_pk_auto("id"))
                .col(string_uniq("code"))
                .col(string("name"))
                .col(text("legal_basis"))
                .col(integer("default_period_months"))
                .col(integer("defence_working_days"))
                .col(integer("publicity_stop_working_days"))
                .col(integer("repair_min_months"))
                .col(integer("repair_decision_working_days"))
                .col(string("repair_revocation_policy"))
                .col(boolean("active"))
                .col(integer("version"))
                .col(instant("created_at"))
                .col(instant("updated_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("measures")
                .col(big_pk_auto("id"))
                .col(string_uniq("code"))
                .col(string("name"))
                .col(string("domain"))
                .col(string("effect"))
                .col(text("legal_basis"))
                .col(boolean("active"))
                .col(integer("version"))
                .col(instant("created_at"))
                .col(instant("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("measures", "idx_measures_domain", &["domain"]))
            .await?;

        m.create_table(
            Table::create()
                .table("list_default_measures")
                .col(big_integer("list_id"))
                .col(big_integer("measure_id"))
                .primary_key(Index::create().col("list_id").col("measure_id"))
                .foreign_key(
                    ForeignKey::create()
                        .from("list_default_measures", "list_id")
                        .to("credit_lists", "id"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("list_default_measures", "measure_id")
                        .to("measures", "id"),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("violation_categories")
                .col(big_pk_auto("id"))
                .col(string_uniq("code"))
                .col(string("name"))
                .col(string("article"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("listings")
                .col(big_pk_auto("id"))
                .col(big_integer("operator_id"))
                .col(big_integer("list_id"))
                .col(string("status"))
                .col(string("authority"))
                .col(string_len("authority_region", 6))
                .col(string("penalty_doc_no"))
                .col(date("penalty_date"))
                .col(string("violation_category"))
                .col(text("reason"))
                .col(text("legal_basis"))
                .col(date("notice_date"))
                .col(date("defence_deadline"))
                .col(instant("proposed_at"))
                .col(string_null("decision_doc_no"))
                .col(date_null("decision_date"))
                .col(integer_null("period_months_override"))
                .col(string_null("removal_doc_no"))
                .col(text_null("removal_reason"))
                .col(date_null("publicity_stop_deadline"))
                .col(integer("version"))
                .col(instant("created_at"))
                .col(instant("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("listings", "operator_id")
                        .to("operators", "id"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("listings", "list_id")
                        .to("credit_lists", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index("listings", "idx_listings_operator", &["operator_id"]))
            .await?;
        m.create_index(index("listings", "idx_listings_status", &["status"]))
            .await?;
        m.create_index(index(
            "listings",
            "idx_listings_region",
            &["authority_region"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("listing_periods")
                .col(big_pk_auto("id"))
                .col(big_integer("listing_id"))
                .col(instant("starts_at"))
                .col(instant("ends_at"))
                .col(instant_null("removed_at"))
                .col(string_null("removal_kind"))
                .foreign_key(
                    ForeignKey::create()
                        .from("listing_periods", "listing_id")
                        .to("listings", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "listing_periods",
            "idx_listing_periods_listing",
            &["listing_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("listing_measures")
                .col(big_integer("listing_id"))
                .col(big_integer("measure_id"))
                .primary_key(Index::create().col("listing_id").col("measure_id"))
                .foreign_key(
                    ForeignKey::create()
                        .from("listing_measures", "listing_id")
                        .to("listings", "id"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("listing_measures", "measure_id")
                        .to("measures", "id"),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("listing_revisions")
                .col(big_pk_auto("id"))
                .col(big_integer("listing_id"))
                .col(integer("version"))
                .col(string("action"))
                .col(instant("recorded_at"))
                .col(instant_null("superseded_at"))
                .col(json_binary("snapshot"))
                .foreign_key(
                    ForeignKey::create()
                        .from("listing_revisions", "listing_id")
                        .to("listings", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "listing_revisions",
                "idx_listing_revisions_listing",
                &["listing_id", "version"],
            )
            .unique()
            .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("repair_applications")
                .col(big_pk_auto("id"))
                .col(big_integer("listing_id"))
                .col(string("status"))
                .col(date("received_date"))
                .col(instant_null("accepted_at"))
                .col(date_null("due_date"))
                .col(json_binary("documents"))
                .col(json_binary("statements"))
                .col(json_binary("eligibility"))
                .col(instant_null("decided_at"))
                .col(string_null("decided_by"))
                .col(text_null("decision_reason"))
                .col(instant_null("revoked_at"))
                .col(text_null("revocation_reason"))
                .col(integer("version"))
                .col(instant("created_at"))
                .col(instant("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("repair_applications", "listing_id")
                        .to("listings", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "repair_applications",
            "idx_repair_listing",
            &["listing_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("partners")
                .col(big_pk_auto("id"))
                .col(string_uniq("subject"))
                .col(string("name"))
                .col(json_binary("domains"))
                .col(boolean("active"))
                .col(instant_null("deactivated_at"))
                .col(integer("version"))
                .col(instant("created_at"))
                .col(instant("updated_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("check_records")
                .col(string_len("id", 36).primary_key())
                .col(string("subject"))
                .col(string("role"))
                .col(string("domain"))
                .col(string_len("uscc", 18))
                .col(big_integer_null("operator_id"))
                .col(instant("as_of"))
                .col(instant("checked_at"))
                .col(string_null("reference"))
                .col(string("decision"))
                .col(json_binary("hit_listing_ids"))
                .col(json_binary("warnings"))
                .col(string("request_id"))
                .col(string_null("batch_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "check_records",
            "idx_check_records_subject",
            &["subject", "checked_at"],
        ))
        .await?;
        m.create_index(index(
            "check_records",
            "idx_check_records_checked_at",
            &["checked_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("partner_feedback")
                .col(big_pk_auto("id"))
                .col(string_len("receipt_id", 36))
                .col(string("subject"))
                .col(string("measure_code"))
                .col(text("context"))
                .col(text_null("note"))
                .col(instant("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("partner_feedback", "receipt_id")
                        .to("check_records", "id"),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_events")
                .col(big_pk_auto("id"))
                .col(instant("occurred_at"))
                .col(string("actor"))
                .col(string("role"))
                .col(string("action"))
                .col(string("entity_type"))
                .col(string("entity_id"))
                .col(json_binary_null("before"))
                .col(json_binary_null("after"))
                .col(text_null("reason"))
                .col(string("request_id"))
                .col(string_len("prev_hash", 64))
                .col(string_len("hash", 64))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "audit_events",
            "idx_audit_entity",
            &["entity_type", "entity_id"],
        ))
        .await?;
        m.create_index(index(
            "audit_events",
            "idx_audit_occurred",
            &["occurred_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("audit_head")
                .col(integer("id").primary_key())
                .col(big_integer("last_event_id"))
                .col(string_len("last_hash", 64))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table("audit_head")
                .columns(["id", "last_event_id", "last_hash"])
                .values_panic([1.into(), 0i64.into(), GENESIS_HASH.into()])
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("calendar_days")
                .col(date("day").primary_key())
                .col(boolean("is_working_day"))
                .col(string("name"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("calendar_years")
                .col(integer("year").primary_key())
                .col(string("source"))
                .col(instant("loaded_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("typical_cases")
                .col(big_pk_auto("id"))
                .col(big_integer("listing_id"))
                .col(integer("year"))
                .col(text("commentary"))
                .col(instant("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("typical_cases", "listing_id")
                        .to("listings", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "typical_cases",
                "idx_typical_cases_unique",
                &["listing_id", "year"],
            )
            .unique()
            .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("idempotency_keys")
                .col(string("subject"))
                .col(string("key"))
                .col(string_len("request_hash", 64))
                .col(text("response"))
                .col(instant("created_at"))
                .primary_key(Index::create().col("subject").col("key"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "idempotency_keys",
            "typical_cases",
            "calendar_years",
            "calendar_days",
            "audit_head",
            "audit_events",
            "partner_feedback",
            "check_records",
            "partners",
            "repair_applications",
            "listing_revisions",
            "listing_measures",
            "listing_periods",
            "listings",
            "violation_categories",
            "list_default_measures",
            "measures",
            "credit_lists",
            "operators",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

/// The `prev_hash` of the first audit event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
