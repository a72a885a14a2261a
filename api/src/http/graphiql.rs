//! GraphiQL with its assets embedded in the binary (pinned versions, see
//! `api/assets/graphiql/README.md`), so it works in a network without internet: the page
//! references no external URL. Development only, like introspection.

use crate::startup::AppState;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use std::sync::Arc;

/// Part of every asset's path: a new version is a new URL, so the assets can be cached
/// for a year.
pub const ASSET_VERSION: &str = "3.8.3";

/// `(name, content type, bytes)` of every embedded asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/init.js"),
    ),
];

/// The page: the embedded assets only.
pub fn page() -> String {
    let asset = |name: &str| format!("/graphiql/assets/{ASSET_VERSION}/{name}");
    format!(
        r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>GraphiQL · 信用惩戒名单登记系统</title>
<link rel="stylesheet" href="{css}">
<style>body {{ margin: 0; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
<div id="graphiql">正在加载 GraphiQL…</div>
<script src="{react}"></script>
<script src="{react_dom}"></script>
<script src="{graphiql}"></script>
<script src="{init}"></script>
</body>
</html>
"#,
        css = asset("graphiql.min.css"),
        react = asset("react.production.min.js"),
        react_dom = asset("react-dom.production.min.js"),
        graphiql = asset("graphiql.min.js"),
        init = asset("init.js"),
    )
}

/// `GET /graphiql/assets/{version}/{name}`: an embedded file, cacheable for a year.
pub async fn asset(
    path: web::Path<(String, String)>,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
    let (version, name) = path.into_inner();
    if state.settings.is_production() || version != ASSET_VERSION {
        return HttpResponse::NotFound().finish();
    }
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, *content_type))
            .insert_header((CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(*bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_uses_embedded_assets_only() {
        let page = page();
        assert!(!page.contains("http://") && !page.contains("https://"));
        for (name, _, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{name}");
            if *name != "graphiql.min.js" && *name != "graphiql.min.css" {
                continue;
            }
            assert!(page.contains(name), "{name}");
        }
    }
}
