//! The public pages (公示): server-rendered Chinese HTML from askama templates
//! (`api/templates/`, checked at compile time), no script and no external asset. They
//! show public fields only (`service::public::PublicListing`) and are rate limited like
//! anonymous GraphQL (per client address).

use super::rate_limit::{RateKey, RateLimiter, retry_after_seconds};
use crate::error::ErrorCode;
use crate::service::public::{self as svc, PublicListing};
use crate::service::receipts::VerifiedReceipt;
use crate::startup::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// Listings a page shows.
const PAGE_SIZE: u64 = 20;
/// A receipt is a few hundred bytes; anything much longer is not one.
const MAX_RECEIPT_CHARS: usize = 8 * 1024;
/// Pages of the list may be cached briefly: the list changes by decisions, not by second.
const CACHEABLE: &str = "public, max-age=60";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/listings/{id}", web::get().to(listing))
        .route("/typical-cases/{year}", web::get().to(typical_cases))
        .route("/statistics/{year}", web::get().to(statistics))
        .route("/verify", web::get().to(verify_form))
        .route("/verify", web::post().to(verify));
}

/// Dates are shown in China Standard Time (UTC+8, no daylight saving), as the decisions
/// are dated.
fn cst_date(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| (t + Duration::hours(8)).format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "—".into())
}

fn html(status: StatusCode, cache: &str, body: Result<String, askama::Error>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((CACHE_CONTROL, cache.to_string()))
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "a public page did not render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("页面暂时无法显示")
        }
    }
}

/// A request the anonymous rate limit of the caller's address admitted (the same bucket
/// as anonymous GraphQL). Every page takes one, first among its arguments, so the limit
/// is applied before anything else is read; a refused request is answered 429 with
/// `Retry-After`.
struct Admitted;

impl actix_web::FromRequest for Admitted {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let refused = match req.app_data::<web::Data<RateLimiter>>() {
                Some(limiter) => rate_limited(&req, limiter).await,
                None => Some(plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "暂时无法查询，请稍后再试",
                )),
            };
            match refused {
                None => Ok(Admitted),
                Some(response) => Err(actix_web::error::InternalError::from_response(
                    "refused by the rate limit",
                    response,
                )
                .into()),
            }
        })
    }
}

async fn rate_limited(req: &HttpRequest, limiter: &RateLimiter) -> Option<HttpResponse> {
    let key = RateKey::of_address(limiter.client_address(req));
    let wait = limiter.check(&key, 1).await.err()?;
    let seconds = retry_after_seconds(wait);
    crate::metrics::refusal("RATE_LIMITED");
    Some(
        HttpResponse::TooManyRequests()
            .content_type("text/plain; charset=utf-8")
            .insert_header((RETRY_AFTER, seconds.to_string()))
            .body(format!("请求过于频繁，请 {seconds} 秒后再试")),
    )
}

struct Row {
    id: String,
    uscc: String,
    name: String,
    list_name: String,
    authority: String,
    listed: String,
    expires: String,
}

impl From<PublicListing> for Row {
    fn from(l: PublicListing) -> Self {
        Row {
            id: l.id.to_string(),
            uscc: l.uscc,
            name: l.operator_name,
            list_name: l.list_name,
            authority: l.authority,
            listed: cst_date(l.listed_at),
            expires: cst_date(l.expires_at),
        }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
struct Index {
    search: String,
    error: Option<String>,
    listings: Vec<Row>,
    next_after: Option<String>,
}

#[derive(serde::Deserialize)]
struct IndexQuery {
    q: Option<String>,
    after: Option<String>,
}

/// `GET /`: the listings in force now, searchable by code or name, 20 a page.
async fn index(
    _: Admitted,
    query: web::Query<IndexQuery>,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
    let IndexQuery { q, after } = query.into_inner();
    let search = q.unwrap_or_default();
    let mut page = Index {
        search: search.clone(),
        error: None,
        listings: Vec::new(),
        next_after: None,
    };
    let after = match after.filter(|a| !a.is_empty()).map(|a| a.parse::<i64>()) {
        None => None,
        Some(Ok(after)) => Some(after),
        Some(Err(_)) => {
            page.error = Some("页码参数无效".into());
            return html(StatusCode::BAD_REQUEST, "no-store", page.render());
        }
    };
    // The search's own rule (`check_search`, as GraphQL's), said in the page's words.
    if let Err(refused) = svc::check_search(Some(&search)) {
        let min = crate::store::name_search::MIN_INDEXED_CHARS;
        page.error = Some(match refused {
            svc::SearchRefusal::TooShort => {
                format!("查询内容过短：请输入统一社会信用代码，或名称中至少 {min} 个字")
            }
            svc::SearchRefusal::ControlCharacter => "查询内容含有无效字符".into(),
            svc::SearchRefusal::TooLong => {
                format!("查询内容过长（最多 {} 个字符）", svc::MAX_SEARCH_CHARS)
            }
        });
        return html(StatusCode::BAD_REQUEST, "no-store", page.render());
    }
    let db = state.heavy_reads(true);
    match svc::in_force_now(db, state.clock.now(), Some(&search), PAGE_SIZE, after).await {
        Ok((rows, has_next)) => {
            if has_next {
                page.next_after = rows.last().map(|l| l.id.to_string());
            }
            page.listings = rows.into_iter().map(Row::from).collect();
            html(StatusCode::OK, CACHEABLE, page.render())
        }
        Err(err) if err.code() == ErrorCode::BadUserInput => {
            page.error = Some("查询条件无效".into());
            html(StatusCode::BAD_REQUEST, "no-store", page.render())
        }
        Err(err) => {
            // Logs internal causes; the page says only that it failed.
            drop(err.into_graphql());
            page.error = Some("暂时无法查询，请稍后再试".into());
            html(StatusCode::SERVICE_UNAVAILABLE, "no-store", page.render())
        }
    }
}

struct MeasureRow {
    code: String,
    name: String,
    domain: String,
    legal_basis: String,
}

#[derive(Template)]
#[template(path = "listing.html")]
struct ListingPage {
    name: String,
    fields: Vec<(&'static str, String)>,
    measures: Vec<MeasureRow>,
    periods: Vec<(String, String)>,
}

/// `GET /listings/{id}`: one listing in force, its public fields, measures and periods.
async fn listing(
    _: Admitted,
    id: web::Path<String>,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
    let not_found = || {
        HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .insert_header((CACHE_CONTROL, CACHEABLE))
            .body("没有这条现行有效的名单记录")
    };
    let Ok(id) = id.into_inner().parse::<i64>() else {
        return not_found();
    };
    // The public's reads run on the anonymous pool: a crawler cannot take the
    // connections partners' checks need.
    match svc::in_force_listing(state.heavy_reads(true), state.clock.now(), id).await {
        Ok(Some((l, measures, periods))) => {
            let page = ListingPage {
                name: l.operator_name.clone(),
                fields: vec![
                    ("统一社会信用代码", l.uscc.clone()),
                    ("名称", l.operator_name.clone()),
                    ("名单", l.list_name.clone()),
                    ("列入机关", l.authority.clone()),
                    ("行政处罚决定书文号", l.penalty_doc_no.clone()),
                    (
                        "列入决定书文号",
                        l.decision_doc_no.clone().unwrap_or_else(|| "—".into()),
                    ),
                    ("违法行为类别", l.violation_category.clone()),
                    ("列入事由", l.reason.clone()),
                    ("列入依据", l.legal_basis.clone()),
                    ("列入日期", cst_date(l.listed_at)),
                    ("届满日期", cst_date(l.expires_at)),
                ],
                measures: measures
                    .into_iter()
                    .map(|m| MeasureRow {
                        code: m.code,
                        name: m.name,
                        domain: sea_orm::ActiveEnum::to_value(&m.domain),
                        legal_basis: m.legal_basis,
                    })
                    .collect(),
                periods: periods
                    .iter()
                    .map(|p| (cst_date(Some(p.starts_at)), cst_date(Some(p.ends_at))))
                    .collect(),
            };
            html(StatusCode::OK, CACHEABLE, page.render())
        }
        Ok(None) => not_found(),
        Err(err) => {
            drop(err.into_graphql());
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("暂时无法查询，请稍后再试")
        }
    }
}

/// A year in a path: a number the services then check (`check_reporting_year`).
fn year_of(text: &str) -> Option<i32> {
    text.parse::<i32>().ok()
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// A service error as a page: bad input (a year out of range) is 404, anything else 503.
fn failed(err: crate::error::AppError) -> HttpResponse {
    if err.code() == ErrorCode::BadUserInput {
        return plain(StatusCode::NOT_FOUND, "没有这一年度的数据");
    }
    drop(err.into_graphql());
    plain(StatusCode::SERVICE_UNAVAILABLE, "暂时无法查询，请稍后再试")
}

struct CaseRow {
    id: String,
    name: String,
    uscc: String,
    authority: String,
    listed: String,
    reason: String,
    commentary: String,
}

#[derive(Template)]
#[template(path = "typical_cases.html")]
struct TypicalCasesPage {
    year: i32,
    cases: Vec<CaseRow>,
}

/// `GET /typical-cases/{year}`: the year's cases still in force, with their commentary.
async fn typical_cases(
    _: Admitted,
    year: web::Path<String>,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
    let Some(year) = year_of(&year) else {
        return plain(StatusCode::NOT_FOUND, "没有这一年度的数据");
    };
    match svc::typical_cases(state.heavy_reads(true), state.clock.now(), year, true).await {
        Ok(cases) => {
            let page = TypicalCasesPage {
                year,
                cases: cases
                    .into_iter()
                    .map(|c| CaseRow {
                        id: c.listing.id.to_string(),
                        name: c.listing.operator_name,
                        uscc: c.listing.uscc,
                        authority: c.listing.authority,
                        listed: cst_date(c.listing.listed_at),
                        reason: c.listing.reason,
                        commentary: c.case.commentary,
                    })
                    .collect(),
            };
            html(StatusCode::OK, CACHEABLE, page.render())
        }
        Err(err) => failed(err),
    }
}

struct DivisionRow {
    name: String,
    listed: i64,
    expired: i64,
    repaired: i64,
    revoked: i64,
    repair_received: i64,
    repair_decided: i64,
}

#[derive(Template)]
#[template(path = "statistics.html")]
struct StatisticsPage {
    year: i32,
    /// The SVG, built by `bar_chart` from numbers and escaped names only.
    chart: String,
    rows: Vec<DivisionRow>,
}

/// Escapes text for SVG/HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart as SVG: one bar per `(label, value)`, scaled to the largest.
pub fn bar_chart(bars: &[(String, i64)]) -> String {
    const ROW: i64 = 28;
    const LABEL: i64 = 120;
    const WIDTH: i64 = 360;
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let height = ROW * i64::try_from(bars.len()).unwrap_or(0) + 8;
    let mut svg = format!(
        r#"<svg role="img" aria-label="各区划列入名单数" viewBox="0 0 {} {height}" width="100%" style="max-width: 40rem">"#,
        LABEL + WIDTH + 60
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = ROW * i64::try_from(i).unwrap_or(0) + 4;
        let w = value.max(&0) * WIDTH / max;
        svg.push_str(&format!(
            r##"<text x="{}" y="{}" text-anchor="end" font-size="14">{}</text><rect x="{LABEL}" y="{y}" width="{w}" height="20" fill="#b71c1c"><title>{}：{value}</title></rect><text x="{}" y="{}" font-size="14">{value}</text>"##,
            LABEL - 6,
            y + 15,
            escape(label),
            escape(label),
            LABEL + w + 6,
            y + 15,
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// How long a rendered statistics page is served again: its `max-age`.
const STATISTICS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// What a rendered statistics page was computed from: the newest audit event (every
/// change of a listing, an operator or a repair application is one) and the registry's
/// clock to the minute (the figures depend on the time too: expiries).
type StatisticsVersion = (i64, i64);

/// The statistics pages of one server (`startup` makes one for all its workers): one
/// yearly aggregation at a time for all anonymous callers, and each year's page, once
/// rendered, served again for its max-age while nothing changed.
pub struct StatisticsPages {
    permit: tokio::sync::Semaphore,
    /// Rendered pages by year; only years that rendered (the valid ones) are kept, so
    /// the map is bounded by `limits.min_year..=max_year`.
    rendered: std::sync::Mutex<
        std::collections::HashMap<i32, (StatisticsVersion, std::time::Instant, web::Bytes)>,
    >,
}

impl Default for StatisticsPages {
    fn default() -> Self {
        Self {
            permit: tokio::sync::Semaphore::new(1),
            rendered: std::sync::Mutex::default(),
        }
    }
}

impl StatisticsPages {
    /// The year's page if it was rendered from `version` less than a max-age ago, with
    /// the seconds it may still be cached.
    fn cached(&self, year: i32, version: StatisticsVersion) -> Option<(web::Bytes, u64)> {
        let rendered = self
            .rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (at, since, body) = rendered.get(&year)?;
        let age = since.elapsed();
        (*at == version && age < STATISTICS_MAX_AGE)
            .then(|| (body.clone(), (STATISTICS_MAX_AGE - age).as_secs().max(1)))
    }

    fn keep(&self, year: i32, version: StatisticsVersion, body: web::Bytes) {
        self.rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(year, (version, std::time::Instant::now(), body));
    }
}

/// The newest audit event's id (0 when none) and the registry's clock to the minute: a
/// primary-key read backwards that stops at the first row.
async fn statistics_version(state: &AppState) -> Result<StatisticsVersion, sea_orm::DbErr> {
    use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
    let newest: Option<i64> = entity::audit_event::Entity::find()
        .select_only()
        .column(entity::audit_event::Column::Id)
        .order_by_desc(entity::audit_event::Column::Id)
        .limit(1)
        .into_tuple()
        .one(state.heavy_reads(true))
        .await?;
    Ok((
        newest.unwrap_or(0),
        state.clock.now().timestamp().div_euclid(60),
    ))
}

fn statistics_page(body: web::Bytes, max_age: u64) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((CACHE_CONTROL, format!("public, max-age={max_age}")))
        .body(body)
}

/// `GET /statistics/{year}`: the year's listing and repair figures by division, with a
/// chart. (Partners' check counts stay in the admins' report: they describe partners.)
async fn statistics(
    _: Admitted,
    year: web::Path<String>,
    state: web::Data<Arc<AppState>>,
    pages: web::Data<StatisticsPages>,
) -> HttpResponse {
    let Some(year) = year_of(&year) else {
        return plain(StatusCode::NOT_FOUND, "没有这一年度的数据");
    };
    let version = match statistics_version(&state).await {
        Ok(v) => v,
        Err(err) => return failed(err.into()),
    };
    if let Some((body, max_age)) = pages.cached(year, version) {
        return statistics_page(body, max_age);
    }
    // The year's aggregation outlasts the anonymous pool's short statement timeout on a
    // large registry, so it runs on the main pool (or the standby), but one at a time
    // for all anonymous callers: a crawler walking the years waits for a permit instead
    // of holding the connections partners' checks need. It waits at most the capacity
    // wait, as an auditor does: an unbounded queue behind one slow render let one
    // client deny the page to everyone (HAProxy answered 504 after a minute).
    let wait = std::time::Duration::from_millis(state.settings.limits.capacity_wait_ms);
    let Ok(Ok(_permit)) = tokio::time::timeout(wait, pages.permit.acquire()).await else {
        crate::metrics::refusal("SERVICE_UNAVAILABLE");
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .insert_header((RETRY_AFTER, "1"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body("暂时无法统计，请稍后再试");
    };
    // Rendered by the request that held the permit before this one.
    if let Some((body, max_age)) = pages.cached(year, version) {
        return statistics_page(body, max_age);
    }
    match crate::service::report::yearly(state.heavy_reads(false), state.clock.now(), year, None)
        .await
    {
        Ok(report) => {
            // Qingyuan's divisions and at most one outside row, never a row per code.
            let divisions = crate::service::report::public_divisions(&report);
            let rows: Vec<DivisionRow> = divisions
                .iter()
                .chain(std::iter::once(&report.totals))
                .map(|d| DivisionRow {
                    name: if d.region_name.is_empty() {
                        d.region_code.clone()
                    } else {
                        d.region_name.clone()
                    },
                    listed: d.listings_decided,
                    expired: d.removed.expired,
                    repaired: d.removed.repaired,
                    revoked: d.removed.revoked,
                    repair_received: d.repair.received,
                    repair_decided: d.repair.decided,
                })
                .collect();
            let bars: Vec<(String, i64)> = divisions
                .iter()
                .map(|d| (d.region_name.clone(), d.listings_decided))
                .collect();
            let page = StatisticsPage {
                year,
                chart: bar_chart(&bars),
                rows,
            };
            match page.render() {
                Ok(body) => {
                    let body = web::Bytes::from(body);
                    pages.keep(year, version, body.clone());
                    statistics_page(body, STATISTICS_MAX_AGE.as_secs())
                }
                rendered => html(StatusCode::OK, CACHEABLE, rendered),
            }
        }
        Err(err) => failed(err),
    }
}

enum VerifyOutcome {
    Genuine(Vec<(&'static str, String)>),
    NotGenuine(String),
}

#[derive(Template)]
#[template(path = "verify.html")]
struct Verify {
    receipt: String,
    result: Option<VerifyOutcome>,
}

/// A serialised enum's name (`CLEAR`, `BIDDING`).
fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn facts(verified: &VerifiedReceipt) -> Vec<(&'static str, String)> {
    let p = &verified.payload;
    let hits = if p.hit_listing_ids.is_empty() {
        "无".to_string()
    } else {
        p.hit_listing_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join("、")
    };
    let mut facts = vec![
        ("回执编号", p.receipt_id.clone()),
        ("签发系统", p.iss.clone()),
        ("签名密钥", verified.kid.clone()),
        ("查询方", p.sub.clone()),
        ("统一社会信用代码", p.uscc.clone()),
        ("领域", name_of(&p.domain)),
        ("结论", name_of(&p.decision)),
        ("查询时点", p.as_of.to_rfc3339()),
        ("查询时间", p.checked_at.to_rfc3339()),
        ("命中名单记录", hits),
    ];
    if let Some(reference) = &p.reference {
        facts.push(("业务编号", reference.clone()));
    }
    if !p.warnings.is_empty() {
        facts.push(("提示", p.warnings.join("、")));
    }
    if let Some(known_at) = p.known_at {
        facts.push(("按记录状态重现于", known_at.to_rfc3339()));
    }
    facts
}

/// `GET /verify`: the form.
async fn verify_form(_: Admitted) -> HttpResponse {
    let page = Verify {
        receipt: String::new(),
        result: None,
    };
    html(StatusCode::OK, "public, max-age=3600", page.render())
}

#[derive(serde::Deserialize)]
struct VerifyForm {
    receipt: String,
}

/// `POST /verify`: whether a pasted receipt is genuine, and what it says.
async fn verify(
    _: Admitted,
    form: web::Form<VerifyForm>,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
    let receipt = form.into_inner().receipt.trim().to_string();
    let outcome = if receipt.chars().count() > MAX_RECEIPT_CHARS {
        VerifyOutcome::NotGenuine("内容过长，不是本系统的回执".into())
    } else {
        match state.receipts.verify(&receipt) {
            Ok(verified) => VerifyOutcome::Genuine(facts(&verified)),
            Err(err) => VerifyOutcome::NotGenuine(err.to_string()),
        }
    };
    let page = Verify {
        receipt: receipt.chars().take(MAX_RECEIPT_CHARS).collect(),
        result: Some(outcome),
    };
    html(StatusCode::OK, "no-store", page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_scales_bars_and_escapes_names() {
        let svg = bar_chart(&[
            ("清城区".into(), 4),
            ("<b>".into(), 2),
            ("英德市".into(), 0),
        ]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(
            svg.contains(r#"width="360""#),
            "the largest bar is full width"
        );
        assert!(
            svg.contains(r#"width="180""#),
            "half the largest is half as wide"
        );
        assert!(svg.contains(r#"width="0""#));
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        assert!(bar_chart(&[]).contains("</svg>"));
    }
}
