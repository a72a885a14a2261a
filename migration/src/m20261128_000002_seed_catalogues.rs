//! Seeds the catalogues: lists, measures, violation categories and the working-day
//! calendar. They are data: admins edit them later through audited mutations.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

struct ListSeed {
    code: &'static str,
    name: &'static str,
    legal_basis: &'static str,
    period_months: i32,
    defence_working_days: i32,
    repair_min_months: i32,
    repair_decision_working_days: i32,
    default_measures: &'static [&'static str],
}

/// Periods and time limits marked unconfirmed in the domain notes are seeded with the
/// most common reading and are editable per list (and the period per listing).
const LISTS: &[ListSeed] = &[
    ListSeed {
        code: "SAMR_SERIOUS_DISHONEST",
        name: "市场监督管理严重违法失信名单",
        legal_basis: "《市场监督管理严重违法失信名单管理办法》(国家市场监督管理总局令第44号, 2021)",
        period_months: 36,
        defence_working_days: 5,
        repair_min_months: 12,
        repair_decision_working_days: 15,
        default_measures: &[
            "SAMR44_FACTOR_LICENSING",
            "SAMR44_FACTOR_PROCUREMENT",
            "SAMR44_FACTOR_BIDDING",
            "SAMR44_KEY_SUPERVISION",
            "SAMR44_NO_NOTIFY_COMMIT",
            "SAMR44_NO_HONORS",
            "SAMR44_OTHER_BY_LAW",
            "PROCUREMENT_RESTRICT",
            "BIDDING_RESTRICT",
            "LAND_TRANSFER_RESTRICT",
            "HONORS_RESTRICT",
        ],
    },
    ListSeed {
        code: "TAX_MAJOR_VIOLATION",
        name: "重大税收违法失信主体名单",
        legal_basis: "《重大税收违法失信主体信息公布管理办法》(国家税务总局令第54号, 2021)",
        period_months: 36,
        defence_working_days: 5,
        repair_min_months: 12,
        repair_decision_working_days: 15,
        default_measures: &[
            "PROCUREMENT_RESTRICT",
            "BIDDING_RESTRICT",
            "LAND_TRANSFER_RESTRICT",
            "HONORS_RESTRICT",
            "SAMR44_KEY_SUPERVISION",
        ],
    },
    ListSeed {
        code: "COURT_DISHONEST_DEBTOR",
        name: "失信被执行人名单",
        legal_basis: "《最高人民法院关于公布失信被执行人名单信息的若干规定》(法释〔2017〕7号)",
        period_months: 24,
        defence_working_days: 5,
        repair_min_months: 12,
        repair_decision_working_days: 15,
        default_measures: &[
            "PROCUREMENT_RESTRICT",
            "BIDDING_RESTRICT",
            "LAND_TRANSFER_RESTRICT",
            "HONORS_RESTRICT",
        ],
    },
];

const ART_18: &str = "《企业信息公示暂行条例》第十八条";

/// (code, name, domain, effect, legal basis)
const MEASURES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "SAMR44_FACTOR_LICENSING",
        "审查行政许可、资质、资格时作为重要考量因素",
        "LICENSING",
        "CONSIDER",
        "市场监管总局令第44号 第二十二条(一)",
    ),
    (
        "SAMR44_FACTOR_PROCUREMENT",
        "委托承担政府采购项目时作为重要考量因素",
        "PROCUREMENT",
        "CONSIDER",
        "市场监管总局令第44号 第二十二条(一)",
    ),
    (
        "SAMR44_FACTOR_BIDDING",
        "工程招投标时作为重要考量因素",
        "BIDDING",
        "CONSIDER",
        "市场监管总局令第44号 第二十二条(一)",
    ),
    (
        "SAMR44_KEY_SUPERVISION",
        "列为重点监管对象，提高检查频次",
        "SUPERVISION",
        "SUPERVISE",
        "市场监管总局令第44号 第二十二条(二)",
    ),
    (
        "SAMR44_NO_NOTIFY_COMMIT",
        "不适用告知承诺制",
        "NOTIFICATION_COMMITMENT",
        "PROHIBIT",
        "市场监管总局令第44号 第二十二条(三)",
    ),
    (
        "SAMR44_NO_HONORS",
        "不予授予市场监督管理部门荣誉称号等表彰奖励",
        "HONORS",
        "PROHIBIT",
        "市场监管总局令第44号 第二十二条(四)",
    ),
    (
        "SAMR44_OTHER_BY_LAW",
        "法律、行政法规和党中央、国务院政策文件规定的其他管理措施",
        "SUPERVISION",
        "SUPERVISE",
        "市场监管总局令第44号 第二十二条(五)",
    ),
    (
        "PROCUREMENT_RESTRICT",
        "限制参加政府采购活动",
        "PROCUREMENT",
        "PROHIBIT",
        "《企业信息公示暂行条例》第十八条；《中华人民共和国政府采购法》第二十二条第一款第(五)项",
    ),
    (
        "BIDDING_RESTRICT",
        "限制参加工程招投标",
        "BIDDING",
        "PROHIBIT",
        "《企业信息公示暂行条例》第十八条；《中华人民共和国招标投标法实施条例》第六十七条、第六十八条",
    ),
    (
        "LAND_TRANSFER_RESTRICT",
        "限制参与国有土地出让",
        "LAND_TRANSFER",
        "PROHIBIT",
        ART_18,
    ),
    (
        "HONORS_RESTRICT",
        "限制授予荣誉称号",
        "HONORS",
        "PROHIBIT",
        ART_18,
    ),
];

/// (code, name, article) — Order 44 Arts. 5-10.
const CATEGORIES: &[(&str, &str, &str)] = &[
    (
        "FOOD_SAFETY",
        "食品安全领域严重违法行为",
        "市场监管总局令第44号 第五条",
    ),
    (
        "DRUGS_DEVICES_COSMETICS",
        "药品、医疗器械、化妆品领域严重违法行为",
        "市场监管总局令第44号 第六条",
    ),
    (
        "QUALITY_SPECIAL_EQUIPMENT",
        "质量安全、特种设备领域严重违法行为",
        "市场监管总局令第44号 第七条",
    ),
    (
        "CONSUMER_HARM",
        "侵害消费者权益的严重违法行为（如收取预付款后卷款跑路）",
        "市场监管总局令第44号 第八条",
    ),
    (
        "UNFAIR_COMPETITION",
        "破坏公平竞争秩序和扰乱市场秩序的严重违法行为",
        "市场监管总局令第44号 第九条",
    ),
    (
        "HEALTH_FALSE_ADVERTISING",
        "涉及健康的虚假宣传、虚假广告等严重违法行为",
        "市场监管总局令第44号 第九条",
    ),
    (
        "OBSTRUCTING_INSPECTION",
        "拒绝、阻碍、干扰市场监管部门依法开展监督检查和事故调查",
        "市场监管总局令第44号 第十条",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let now = chrono::Utc::now();
        for (code, name, domain, effect, basis) in MEASURES {
            m.exec_stmt(
                Query::insert()
                    .into_table("measures")
                    .columns([
                        "code",
                        "name",
                        "domain",
                        "effect",
                        "legal_basis",
                        "active",
                        "version",
                        "created_at",
                        "updated_at",
                    ])
                    .values_panic([
                        (*code).into(),
                        (*name).into(),
                        (*domain).into(),
                        (*effect).into(),
                        (*basis).into(),
                        true.into(),
                        1.into(),
                        now.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        }
        for list in LISTS {
            m.exec_stmt(
                Query::insert()
                    .into_table("credit_lists")
                    .columns([
                        "code",
                        "name",
                        "legal_basis",
                        "default_period_months",
                        "defence_working_days",
                        "publicity_stop_working_days",
                        "repair_min_months",
                        "repair_decision_working_days",
                        "repair_revocation_policy",
                        "active",
                        "version",
                        "created_at",
                        "updated_at",
                    ])
                    .values_panic([
                        list.code.into(),
                        list.name.into(),
                        list.legal_basis.into(),
                        list.period_months.into(),
                        list.defence_working_days.into(),
                        3.into(),
                        list.repair_min_months.into(),
                        list.repair_decision_working_days.into(),
                        "RESTART".into(),
                        true.into(),
                        1.into(),
                        now.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
            for measure in list.default_measures {
                // Codes are compile-time constants of this file, never user input.
                m.get_connection()
                    .execute_unprepared(&format!(
                        "INSERT INTO list_default_measures (list_id, measure_id) \
                         SELECT l.id, ms.id FROM credit_lists l, measures ms \
                         WHERE l.code = '{}' AND ms.code = '{}'",
                        list.code, measure
                    ))
                    .await?;
            }
        }
        for (code, name, article) in CATEGORIES {
            m.exec_stmt(
                Query::insert()
                    .into_table("violation_categories")
                    .columns(["code", "name", "article"])
                    .values_panic([(*code).into(), (*name).into(), (*article).into()])
                    .to_owned(),
            )
            .await?;
        }
        seed_calendar(m, now).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "calendar_days",
            "calendar_years",
            "violation_categories",
            "list_default_measures",
            "credit_lists",
            "measures",
        ] {
            m.exec_stmt(Query::delete().from_table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn seed_calendar(
    m: &SchemaManager<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    let rows =
        crate::calendar_data::parse(crate::calendar_data::SHIPPED_CSV).map_err(DbErr::Migration)?;
    let years = crate::calendar_data::years(&rows);
    for row in rows {
        m.exec_stmt(
            Query::insert()
                .into_table("calendar_days")
                .columns(["day", "is_working_day", "name"])
                .values_panic([row.day.into(), row.is_working_day.into(), row.name.into()])
                .to_owned(),
        )
        .await?;
    }
    for year in years {
        m.exec_stmt(
            Query::insert()
                .into_table("calendar_years")
                .columns(["year", "source", "loaded_at"])
                .values_panic([
                    year.into(),
                    format!("State Council holiday notice for {year} (holiday-cn data)").into(),
                    now.into(),
                ])
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}
