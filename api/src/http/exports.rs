//! Bulk exports over HTTP:
//!
//! - `GET /exports/public-list.csv|.xlsx|.jsonl` — anyone; `PublicListing` fields only;
//!   `ETag` and `Last-Modified` from the last change (the newest listing revision, and
//!   the number of listings in force, which an expiry changes), `If-None-Match` → 304.
//!   Served from the file rendered once for the current version
//!   (`service::public_files`): a download costs a read of it, not a walk of the list.
//! - `GET /exports/public-list.jsonl.sig` — a detached Ed25519 signature over the exact
//!   bytes of the `.jsonl` with the same ETag, by the newest receipt key (JWKS at
//!   `/.well-known/jwks.json`).
//! - `GET /exports/check-records.csv?from=&to=` — a token: a partner gets its own
//!   records, auditors and admins all; streamed a page at a time (`service::export`),
//!   admitted by `graphql::capacity` for as long as it streams (503
//!   `SERVICE_UNAVAILABLE`, `Retry-After: 1`, when the caller's exports or the auditors'
//!   permits are all taken).

use super::caller;
use super::error_body;
use super::graphql::bearer_of;
use super::rate_limit::{RateKey, RateLimiter};
use crate::auth::Role;
use crate::bulk::write::{OutputFormat, Sink};
use crate::error::AppError;
use crate::service::export::{self, ExportFilter, ExportKind, PublicVersion};
use crate::service::public_files::{self, Rendered};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use base64::Engine;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A writer whose bytes are taken out after each page and sent to the client.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Vec<u8> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Chunk = Result<web::Bytes, std::io::Error>;

/// The client went away: the export stops (not an error worth logging).
fn gone() -> AppError {
    AppError::Conflict("the client closed the connection".into())
}

/// Streams an export: rows are written a page at a time and handed to the client, at
/// most a few pages ahead of it (the channel's bound), so memory stays flat. An `.xlsx`
/// is assembled in a temporary file (its zip directory comes last) and then streamed.
fn stream(
    state: &Arc<AppState>,
    db: sea_orm::DatabaseConnection,
    kind: ExportKind,
    filter: ExportFilter,
    format: OutputFormat,
) -> impl futures_util::Stream<Item = Chunk> + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let now = state.clock.now();
    tokio::spawn(async move {
        let result: Result<(), AppError> = async {
            if format == OutputFormat::Xlsx {
                let file = tempfile::tempfile().map_err(AppError::internal)?;
                let out = file.try_clone().map_err(AppError::internal)?;
                let mut sink = Sink::new(format, Box::new(out), export::columns_of(kind))
                    .map_err(AppError::internal)?;
                export::export(&db, kind, &filter, now, &mut sink, || async { Ok(()) }).await?;
                sink.finish().map_err(AppError::internal)?;
                let mut file = file;
                std::io::Seek::rewind(&mut file).map_err(AppError::internal)?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = std::io::Read::read(&mut file, &mut buf).map_err(AppError::internal)?;
                    if n == 0 {
                        break;
                    }
                    tx.send(Ok(web::Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .map_err(|_| gone())?;
                }
                return Ok(());
            }
            let pending = Pending::default();
            let mut sink = Sink::new(format, Box::new(pending.clone()), export::columns_of(kind))
                .map_err(AppError::internal)?;
            export::export(&db, kind, &filter, now, &mut sink, || {
                let bytes = pending.take();
                let tx = tx.clone();
                async move {
                    if !bytes.is_empty() {
                        tx.send(Ok(web::Bytes::from(bytes)))
                            .await
                            .map_err(|_| gone())?;
                    }
                    Ok(())
                }
            })
            .await?;
            sink.finish().map_err(AppError::internal)?;
            let rest = pending.take();
            if !rest.is_empty() {
                tx.send(Ok(web::Bytes::from(rest)))
                    .await
                    .map_err(|_| gone())?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) | Err(AppError::Conflict(_)) => {}
            Err(err) => {
                // The headers are out: all the client can be told is that the body broke off.
                drop(err.into_graphql());
                let _ = tx
                    .send(Err(std::io::Error::other("the export failed")))
                    .await;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

fn refuse(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(error_body(code, message))
}

fn app_error(err: AppError) -> HttpResponse {
    let code = err.code();
    let status = match code.as_str() {
        "BAD_USER_INPUT" => StatusCode::BAD_REQUEST,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = err.into_graphql().message;
    refuse(status, code.as_str(), &message)
}

/// `If-None-Match` by the weak comparison RFC 9110 (13.1.2) asks for: a proxy that
/// compresses a response marks its tag weak (`W/"…"`), and the client asks back with it.
/// `If-Modified-Since` is not honoured: an expiry changes the list without a newer
/// change time, so only the tag says whether a copy is current.
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
        })
}

/// The response head of a version of the public list: `200` (or `304` when the client
/// has that version), its validators and how long it may be cached.
fn public_head(req: &HttpRequest, version: &PublicVersion) -> (HttpResponseBuilder, bool) {
    let etag = public_files::etag_of(version);
    let fresh = not_modified(req, &etag);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((ETAG, etag))
        .insert_header(("cache-control", "public, max-age=60"));
    if let Some(m) = public_files::last_modified_of(version) {
        response.insert_header((LAST_MODIFIED, m));
    }
    (response, fresh)
}

/// `GET /exports/public-list.{csv,xlsx,jsonl}` (and `.jsonl.sig`), served from the file
/// rendered for the current version (`service::public_files`).
pub async fn public_list(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Arc<AppState>>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    let file = path.into_inner();
    let Some(name) = file.strip_prefix("public-list.") else {
        return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such export");
    };
    let (format, signature) = match name {
        "csv" => (OutputFormat::Csv, false),
        "xlsx" => (OutputFormat::Xlsx, false),
        "jsonl" => (OutputFormat::Jsonl, false),
        "jsonl.sig" => (OutputFormat::Jsonl, true),
        _ => return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such export"),
    };
    if let Some(refused) =
        super::graphql::refused_by_address(&req, &limiter, RateKey::of_address).await
    {
        return refused;
    }
    // The version (a count over the list, once per change) on the anonymous pool, as
    // an anonymous read; the file's render on the heavy-read pool (the standby when in
    // use), once per version.
    let db = state.heavy_reads(false).clone();
    let now = state.clock.now();
    let version = match state
        .public_files
        .version(state.heavy_reads(true), now)
        .await
    {
        Ok(v) => v,
        Err(e) => return app_error(e),
    };
    if let (mut response, true) = public_head(&req, &version) {
        return response.finish();
    }
    let rendered = match state.public_files.file(&db, format, &version, now).await {
        Ok(r) => r,
        Err(e) => return app_error(e),
    };
    // The file may be of a newer version than the one asked about: it goes out under
    // its own validators.
    let (mut response, fresh) = public_head(&req, &rendered.version);
    if fresh {
        return response.finish();
    }
    if signature {
        let ring = state.receipts.ring();
        let Some((kid, key)) = ring.signer() else {
            return app_error(AppError::internal(anyhow::anyhow!(
                "no receipt signing key is loaded"
            )));
        };
        return match rendered.signature(kid, key).await {
            Ok(signed) => response.json(serde_json::json!({
                "alg": "EdDSA",
                "kid": signed.kid,
                "signature": base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(signed.signature.to_bytes()),
                "sha256": hex::encode(signed.sha256),
                "etag": rendered.etag(),
            })),
            Err(e) => app_error(e),
        };
    }
    response
        .content_type(format.content_type())
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"public-list.{name}\""),
        ))
        .no_chunking(rendered.len)
        .streaming(file_stream(rendered))
}

/// The bytes of a rendered file, a slice at a time, read off the runtime's threads.
fn file_stream(rendered: Arc<Rendered>) -> impl futures_util::Stream<Item = Chunk> + 'static {
    futures_util::stream::try_unfold(0u64, move |offset| {
        let rendered = Arc::clone(&rendered);
        async move {
            if offset >= rendered.len {
                return Ok(None);
            }
            let slice = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; public_files::SLICE_BYTES];
                let n = rendered.read_at(&mut buf, offset)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>(buf)
            })
            .await
            .map_err(std::io::Error::other)??;
            if slice.is_empty() {
                return Ok(None);
            }
            let next = offset + slice.len() as u64;
            Ok(Some((web::Bytes::from(slice), next)))
        }
    })
}

#[derive(serde::Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A date of the query string, under the same year bounds as every GraphQL date
/// (`limits.min_year`..`max_year`): chrono alone accepts years such as -262143, whose
/// Beijing midnight is outside what an instant can hold.
fn date_param(
    rules: &crate::domain::input::InputRules,
    name: &str,
    v: Option<&str>,
) -> Result<Option<chrono::NaiveDate>, AppError> {
    let Some(text) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| AppError::bad_input(format!("{name} '{text}' is not a date (YYYY-MM-DD)")))?;
    rules
        .date(date)
        .map_err(|refused| AppError::bad_input(format!("{name} {}", refused.message)))?;
    Ok(Some(date))
}

/// `GET /exports/check-records.csv?from=&to=` (Beijing dates, inclusive).
pub async fn check_records(
    req: HttpRequest,
    query: web::Query<RangeQuery>,
    state: web::Data<Arc<AppState>>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    // The same authorisation as every GraphQL operation (`caller::authorise`): the
    // token, the rate limit, the partner's registration.
    let address = limiter.client_address(&req);
    let identity = match caller::authorise(&state, &limiter, bearer_of(&req), address).await {
        Ok(i) if i.is_anonymous() => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "check records need a token",
            );
        }
        Ok(i) => i,
        Err(caller::Refusal::RateLimited(wait)) => {
            return super::graphql::rate_limited(wait, "-");
        }
        Err(caller::Refusal::Unauthenticated(m)) => {
            return refuse(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &m);
        }
        Err(caller::Refusal::Refused(e)) => return app_error(e),
    };
    let rules = state.settings.limits.input_rules();
    let (from, to) = match (
        date_param(&rules, "from", query.from.as_deref()),
        date_param(&rules, "to", query.to.as_deref()),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return app_error(e),
    };
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return app_error(AppError::bad_input(format!("from {f} is after to {t}")));
    }
    let filter = ExportFilter {
        from,
        to,
        subject: (identity.role == Role::Partner).then(|| identity.subject.clone()),
        ..Default::default()
    };
    // Admitted like the GraphQL reads it duplicates (`graphql::capacity`), for as long as
    // it streams: one request otherwise read a whole table, as many times at once as its
    // caller liked, on the pool partners' checks use.
    let permit = match state
        .capacity
        .admit_export(identity.role, &caller::caller_key(&identity))
        .await
    {
        Ok(permit) => permit,
        Err(busy) => {
            return HttpResponse::ServiceUnavailable()
                .insert_header((RETRY_AFTER, "1"))
                .json(error_body("SERVICE_UNAVAILABLE", &busy.message()));
        }
    };
    let body = stream(
        &state,
        state.heavy_reads(false).clone(),
        ExportKind::CheckRecords,
        filter,
        OutputFormat::Csv,
    );
    // The permit lives in the body: it is given back when actix drops the stream (sent
    // whole, or the client went away), not when the reading task has merely queued the
    // last pages.
    let body = futures_util::StreamExt::map(body, move |chunk| {
        let _held = &permit;
        chunk
    });
    HttpResponse::Ok()
        .content_type(OutputFormat::Csv.content_type())
        .insert_header(("cache-control", "private, no-store"))
        .insert_header((
            "content-disposition",
            "attachment; filename=\"check-records.csv\"",
        ))
        .streaming(body)
}
