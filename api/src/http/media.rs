//! GraphQL over HTTP media types (the graphql-over-http specification): which type an
//! answer is written in, which request bodies are accepted, and when a GET is a browser
//! asking for GraphiQL rather than a client asking for a result.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
pub const JSON: &str = "application/json";

/// The type a GraphQL answer is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: the HTTP status says whether the request
    /// failed as a whole (4xx) or ran (200).
    GraphqlResponse,
    /// `application/json`, the legacy type: every well-formed request is answered 200,
    /// request errors included, because intermediaries may replace non-2xx JSON bodies.
    Json,
}

impl Media {
    pub fn content_type(self) -> &'static str {
        match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json",
        }
    }

    /// The status of an executed request: the server decides 200 (it ran), 400 (a request
    /// error: it never ran), or a 5xx; a legacy client gets 200 for a request error.
    pub fn status_of_executed(self, status: StatusCode) -> StatusCode {
        match (self, status) {
            (Media::Json, StatusCode::BAD_REQUEST) => StatusCode::OK,
            (_, status) => status,
        }
    }
}

/// One media range of an `Accept` header with its weight.
fn ranges(accept: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    accept.split(',').filter_map(|part| {
        let mut pieces = part.split(';');
        let range = pieces.next()?.trim().to_ascii_lowercase();
        if range.is_empty() {
            return None;
        }
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        Some((range, q))
    })
}

/// The weight `accept` gives `media`: an exact range first, then `type/*`, then `*/*`.
fn weight(accept: &str, media: &str) -> Option<f32> {
    let top = media.split('/').next().unwrap_or_default();
    let mut exact = None;
    let mut partial = None;
    let mut any = None;
    for (range, q) in ranges(accept) {
        if range == media {
            exact = Some(q);
        } else if range.strip_suffix("/*") == Some(top) {
            partial = Some(q);
        } else if range == "*/*" {
            any = Some(q);
        }
    }
    exact.or(partial).or(any)
}

/// The answer's type for an `Accept` header: `application/graphql-response+json` when
/// the client names it and likes it at least as much as `application/json`; otherwise
/// `application/json` (also when there is no header, `*/*`, or nothing acceptable).
pub fn negotiate_accept(accept: Option<&str>) -> Media {
    let Some(accept) = accept else {
        return Media::Json;
    };
    let explicit = ranges(accept)
        .find(|(range, _)| range == GRAPHQL_RESPONSE_JSON)
        .map(|(_, q)| q);
    match explicit {
        Some(q) if q > 0.0 && q >= weight(accept, JSON).unwrap_or(0.0) => Media::GraphqlResponse,
        _ => Media::Json,
    }
}

pub fn negotiate(req: &HttpRequest) -> Media {
    negotiate_accept(req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()))
}

/// A browser navigating to the endpoint: it names `text/html` and neither JSON type.
pub fn wants_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let named = |media: &str| ranges(accept).any(|(range, q)| range == media && q > 0.0);
    named("text/html") && !named(JSON) && !named(GRAPHQL_RESPONSE_JSON)
}

/// Why a POST body's `Content-Type` is not accepted: only `application/json` (in UTF-8)
/// carries a GraphQL request. `text/plain` in particular is refused, since a browser
/// sends it cross-origin without a CORS preflight.
/// The media type of a GraphQL multipart request (file uploads).
const MULTIPART: &str = "multipart/form-data";

pub fn check_request_type(content_type: Option<&str>) -> Result<(), String> {
    let Some(value) = content_type else {
        return Err("a GraphQL POST needs `Content-Type: application/json`".into());
    };
    let mut pieces = value.split(';');
    let essence = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // A multipart request (GraphQL multipart request spec) carries `importListings`
    // uploads; its parts are read by their own path with its own body cap.
    if essence == MULTIPART {
        return Ok(());
    }
    if essence != JSON {
        return Err(format!(
            "`Content-Type: {essence}` is not accepted: send the request as application/json \
             (or multipart/form-data for an upload)"
        ));
    }
    for param in pieces {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
        {
            let charset = value.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return Err(format!(
                    "charset {charset} is not accepted: send the request in UTF-8"
                ));
            }
        }
    }
    Ok(())
}

pub fn content_type_of(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Writes a JSON answer's `Content-Type` as the negotiated type (responses are built as
/// `application/json`; other types, e.g. GraphiQL's HTML, are left alone).
pub fn label(mut response: actix_web::HttpResponse, media: Media) -> actix_web::HttpResponse {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(JSON));
    if is_json {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    }
    response
}

/// A request error (the graphql-over-http term): the request failed before execution
/// (parse, validation, variable coercion, a limit), so it has no `data` at all. Field
/// errors always carry a `path`; request errors never do.
pub fn is_request_error(response: &serde_json::Value) -> bool {
    let data_null = response.get("data").is_none_or(serde_json::Value::is_null);
    let errors = response
        .get("errors")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    data_null
        && !errors.is_empty()
        && errors.iter().all(|e| {
            e.get("path")
                .is_none_or(|p| p.as_array().is_none_or(Vec::is_empty))
        })
}

/// Removes `data` from request errors (a single answer or each answer of a batch): the
/// specification says `data` is absent, not null, when execution never started.
pub fn strip_request_error_data(body: &mut serde_json::Value) {
    let answers: Vec<&mut serde_json::Value> = match body {
        serde_json::Value::Array(items) => items.iter_mut().collect(),
        single => vec![single],
    };
    for answer in answers {
        if is_request_error(answer)
            && let Some(object) = answer.as_object_mut()
        {
            object.remove("data");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate_accept(None), Media::Json);
        assert_eq!(negotiate_accept(Some("*/*")), Media::Json);
        assert_eq!(negotiate_accept(Some("application/json")), Media::Json);
        assert_eq!(
            negotiate_accept(Some("application/graphql-response+json")),
            Media::GraphqlResponse
        );
        assert_eq!(
            negotiate_accept(Some(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Media::GraphqlResponse
        );
        assert_eq!(
            negotiate_accept(Some(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Media::Json
        );
        assert_eq!(
            negotiate_accept(Some("application/graphql-response+json;q=0")),
            Media::Json
        );
        assert_eq!(negotiate_accept(Some("text/html")), Media::Json);
    }

    #[test]
    fn only_a_browser_gets_html() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(Some(browser)));
        assert!(!wants_html(None));
        assert!(!wants_html(Some("*/*")));
        assert!(!wants_html(Some("application/json")));
        assert!(!wants_html(Some("text/html, application/json")));
        assert!(!wants_html(Some("text/html;q=0")));
    }

    #[test]
    fn only_json_bodies_are_accepted() {
        assert!(check_request_type(Some("application/json")).is_ok());
        assert!(check_request_type(Some("Application/JSON; charset=UTF-8")).is_ok());
        assert!(check_request_type(None).is_err());
        assert!(check_request_type(Some("text/plain")).is_err());
        assert!(check_request_type(Some("text/plain;charset=utf-8")).is_err());
        assert!(check_request_type(Some("application/x-www-form-urlencoded")).is_err());
        assert!(check_request_type(Some("application/json; charset=latin1")).is_err());
    }

    #[test]
    fn legacy_clients_get_200_for_request_errors() {
        assert_eq!(
            Media::Json.status_of_executed(StatusCode::BAD_REQUEST),
            StatusCode::OK
        );
        assert_eq!(
            Media::GraphqlResponse.status_of_executed(StatusCode::BAD_REQUEST),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Media::Json.status_of_executed(StatusCode::GATEWAY_TIMEOUT),
            StatusCode::GATEWAY_TIMEOUT
        );
    }

    #[test]
    fn request_errors_lose_data_field_errors_keep_it() {
        let mut request_error = json!({ "data": null, "errors": [{ "message": "x" }] });
        strip_request_error_data(&mut request_error);
        assert!(request_error.get("data").is_none());
        let mut field_error =
            json!({ "data": null, "errors": [{ "message": "x", "path": ["listing"] }] });
        strip_request_error_data(&mut field_error);
        assert!(field_error.get("data").is_some());
        let mut partial = json!({ "data": { "a": 1 }, "errors": [{ "message": "x" }] });
        strip_request_error_data(&mut partial);
        assert!(partial.get("data").is_some());
        let mut batch = json!([{ "data": null, "errors": [{ "message": "x" }] }, { "data": {} }]);
        strip_request_error_data(&mut batch);
        assert!(batch[0].get("data").is_none());
        assert!(batch[1].get("data").is_some());
    }
}
