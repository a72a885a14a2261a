//! The public pages: the list with search and paging, a listing's detail with its
//! measures, receipt verification; public fields only, rate limited, cacheable.

use tests::{TestApp, on_both_backends, on_both_backends_with, valid_code};

async fn page(app: &TestApp, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = app.get(path).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}

async fn listed(app: &TestApp, serial: u32, name: &str) -> (String, i64) {
    let code = valid_code("441802", serial);
    app.create_operator(&code, name).await;
    let id = app
        .insert_listing_in_force(&code, &["PROCUREMENT_RESTRICT"])
        .await;
    (code, id)
}

async fn the_list_is_searchable_and_paged(app: TestApp) {
    let (code, id) = listed(&app, 71, "清远市示例食品有限公司").await;
    for serial in 0..21 {
        listed(
            &app,
            100 + serial,
            &format!("清远市其他商贸{serial}号有限公司"),
        )
        .await;
    }
    // A listing no longer in force is not shown.
    let old = valid_code("441802", 72);
    app.create_operator(&old, "已届满公司").await;
    let now = chrono::Utc::now();
    app.insert_listing(
        &old,
        "SAMR_SERIOUS_DISHONEST",
        now - chrono::Duration::days(2000),
        now - chrono::Duration::days(10),
        None,
        &[],
    )
    .await;

    let (status, body, headers) = page(&app, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"<html lang="zh-CN">"#));
    assert!(body.contains(r#"<label for="q">"#));
    assert!(!body.contains("<script"), "no script on public pages");
    assert!(!body.contains("http://") && !body.contains("https://"));
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert_eq!(
        body.matches("<tr>").count(),
        1 + 20,
        "a header row and 20 listings"
    );
    assert!(body.contains("下一页"));
    assert!(!body.contains("已届满公司"));

    let after = body
        .split(r#"name="after" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let (_, second, _) = page(&app, &format!("/?q=&after={after}")).await;
    assert_eq!(second.matches("<tr>").count(), 1 + 2);
    assert!(!second.contains("下一页"), "22 listings: two pages");

    let (status, found, _) = page(&app, &format!("/?q={code}")).await;
    assert_eq!(status, 200);
    assert!(found.contains("清远市示例食品有限公司"));
    assert!(found.contains(&format!("/listings/{id}")));
    assert_eq!(found.matches("<tr>").count(), 2);
    let by_name = app
        .client
        .get(format!("{}/", app.address))
        .query(&[("q", "示例食品")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(by_name.contains(&code));
    // Markup in the search is escaped.
    let (_, escaped, _) = page(&app, "/?q=%3Cb%3Ex").await;
    assert!(escaped.contains("&#60;b&#62;x") || escaped.contains("&lt;b&gt;x"));
    let (status, long, _) = page(&app, &format!("/?q={}", "长".repeat(101))).await;
    assert_eq!(status, 400);
    assert!(long.contains("过长"), "{long}");
    // Too short for the name index: said so, not "too long".
    let (status, short, _) = page(&app, "/?q=ab").await;
    assert_eq!(status, 400);
    assert!(short.contains("过短") && !short.contains("过长"), "{short}");
    // A NUL is refused as input; PostgreSQL refused it as an error of the statement,
    // which the page showed as the service failing (503) and logged as internal.
    let (status, nul, _) = page(&app, "/?q=%00%00%00").await;
    assert_eq!(status, 400, "{nul}");
    assert!(nul.contains("无效字符"), "{nul}");
}

async fn a_listing_shows_its_measures(app: TestApp) {
    let (code, id) = listed(&app, 73, "清远市示例建设有限公司").await;
    let (status, body, _) = page(&app, &format!("/listings/{id}")).await;
    assert_eq!(status, 200);
    assert!(body.contains(&code));
    assert!(body.contains("PROCUREMENT_RESTRICT"));
    assert!(body.contains("法律依据"));
    assert!(body.contains("公示期间"));
    let (status, _, _) = page(&app, "/listings/999999").await;
    assert_eq!(status, 404);
    let (status, _, _) = page(&app, "/listings/abc").await;
    assert_eq!(status, 404);
}

async fn receipts_are_verified(app: TestApp) {
    let (result, receipt) = crate::receipts::restricted_receipt(&app).await;
    let (status, form, _) = page(&app, "/verify").await;
    assert_eq!(status, 200);
    assert!(form.contains(r#"<label for="receipt">"#));
    let verify = |text: String| {
        app.client
            .post(format!("{}/verify", app.address))
            .form(&[("receipt", text)])
            .send()
    };
    let resp = verify(receipt.clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = resp.text().await.unwrap();
    assert!(body.contains("回执真实有效"), "{body}");
    assert!(body.contains(result["receiptId"].as_str().unwrap()));
    assert!(body.contains("RESTRICTED"));

    // One character of the payload changed.
    let mut parts: Vec<String> = receipt.split('.').map(str::to_string).collect();
    let flipped = if parts[1].ends_with('A') { 'B' } else { 'A' };
    parts[1].pop();
    parts[1].push(flipped);
    let body = verify(parts.join(".")).await.unwrap().text().await.unwrap();
    assert!(body.contains("回执无效"), "{body}");
    assert!(!body.contains("回执真实有效"));
}

async fn typical_cases_and_statistics(app: TestApp) {
    use chrono::Datelike;
    let (_, id) = listed(&app, 74, "清远市典型案例有限公司").await;
    let year = chrono::Utc::now().year();
    let marked = app
        .gql(
            Some(&app.admin()),
            "mutation($l: ID!, $y: Int!) { markTypicalCase(listingId: $l, year: $y, commentary: \"卷款跑路，侵害消费者权益\") { id } }",
            serde_json::json!({ "l": id.to_string(), "y": year }),
        )
        .await;
    assert!(marked.body.get("errors").is_none(), "{}", marked.body);
    let (status, body, headers) = page(&app, &format!("/typical-cases/{year}")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert!(body.contains("清远市典型案例有限公司"));
    assert!(body.contains("卷款跑路，侵害消费者权益"));
    assert!(body.contains(&format!("/listings/{id}")));

    let (status, body, _) = page(&app, &format!("/statistics/{year}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<svg"), "{body}");
    assert!(body.contains("<rect"), "{body}");
    assert!(!body.contains("http://") && !body.contains("https://"));
    let (status, _, _) = page(&app, "/statistics/1800").await;
    assert_eq!(status, 404);
    let (status, _, _) = page(&app, "/typical-cases/x").await;
    assert_eq!(status, 404);
}

fn tight_public_rate(settings: &mut api::config::Settings) {
    settings.limits.public_rate_per_second = 1;
    settings.limits.public_rate_burst = 2;
}

async fn pages_are_rate_limited(app: TestApp) {
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.get("/").await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let resp = app.get("/verify").await;
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
}

on_both_backends!(
    the_list_is_searchable_and_paged,
    a_listing_shows_its_measures,
    receipts_are_verified,
    typical_cases_and_statistics,
    pages_carry_security_headers,
);

on_both_backends_with!(
    pages_are_rate_limited => tight_public_rate,
    a_slow_statistics_page_does_not_hold_the_others => short_capacity_wait,
);

fn short_capacity_wait(settings: &mut api::config::Settings) {
    settings.limits.capacity_wait_ms = 200;
}

/// One slow statistics page does not deny the others: a request that finds the page's
/// one permit taken waits at most `limits.capacity_wait_ms`, then answers 503 with
/// `Retry-After`; a year already rendered is served from its cache meanwhile, without
/// the permit. (The permit is held by a render blocked on a lock of the listings table,
/// standing for a slow aggregation: PostgreSQL only, SQLite readers are not blocked.)
async fn a_slow_statistics_page_does_not_hold_the_others(app: TestApp) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    use std::time::{Duration, Instant};
    listed(&app, 81, "清远市统计示例有限公司").await;
    let (status, cached, headers) = page(&app, "/statistics/2025").await;
    assert_eq!(status, 200, "{cached}");
    assert_eq!(headers["cache-control"], "public, max-age=60");
    // Served again from the cache: the same page.
    let (status, again, _) = page(&app, "/statistics/2025").await;
    assert_eq!((status, &again), (200, &cached));
    if app.backend != tests::Backend::Postgres {
        return;
    }
    let held = app.db.begin().await.unwrap();
    held.execute_unprepared("LOCK TABLE listings IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let slow = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{}/statistics/2024", app.address);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let refused = futures_util::future::join_all((2019..2024).map(|year| {
        let app = &app;
        async move { app.get(&format!("/statistics/{year}")).await }
    }))
    .await;
    let waited = started.elapsed();
    for resp in refused {
        assert_eq!(resp.status().as_u16(), 503);
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
    // The rendered year does not need the permit.
    let (status, body, _) = page(&app, "/statistics/2025").await;
    assert_eq!((status, &body), (200, &cached));
    held.rollback().await.unwrap();
    assert_eq!(slow.await.unwrap(), 200);
}

/// The pages carry a policy that forbids scripts, framing and loads from elsewhere, and
/// every answer (pages, their errors, the API, exports) says not to sniff its type.
/// GraphiQL (development only) has a policy of its own that lets its embedded scripts
/// run.
async fn pages_carry_security_headers(app: TestApp) {
    let (_, id) = listed(&app, 91, "清远市安全示例有限公司").await;
    let policy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    for path in [
        "/".to_string(),
        "/verify".to_string(),
        format!("/listings/{id}"),
        "/statistics/2025".to_string(),
        "/listings/999999".to_string(),
    ] {
        let (status, body, headers) = page(&app, &path).await;
        assert!(status == 200 || status == 404, "{path}: {status} {body}");
        assert_eq!(headers["content-security-policy"], policy, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
    for path in ["/exports/public-list.csv", "/healthz", "/schema.graphql"] {
        let resp = app.get(path).await;
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    let answer = app
        .post_graphql(None, &serde_json::json!({ "query": "{ __typename }" }), &[])
        .await;
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    let graphiql = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(graphiql.status(), 200);
    let own = graphiql.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(own.contains("script-src 'self'"), "{own}");
    assert!(own.contains("frame-ancestors 'none'"), "{own}");
}
