//! Rate limits shared across instances (`limits.shared_store_url`): two servers on port 0
//! with the same Redis key prefix (unique per test) are one limit; with the store
//! unreachable each server still applies its own. Redis: `TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379` (`.ci/run` starts one if none answers).

use api::config::Settings;
use api::domain::measures::Domain;
use serde_json::json;
use std::time::{Duration, Instant};
use tests::{Backend, HttpAnswer, TestApp, spawn_app_with};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The strict limits of `rate_limits.rs` (three a second per subject, two per address).
fn strict(settings: &mut Settings) {
    settings.limits.rate_per_second = 1;
    settings.limits.rate_burst = 3;
    settings.limits.public_rate_per_second = 1;
    settings.limits.public_rate_burst = 2;
}

/// Two servers sharing one store and a key prefix no other test uses.
async fn two_instances(backend: Backend) -> (TestApp, TestApp) {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let shared = |settings: &mut Settings| {
        strict(settings);
        settings.limits.shared_store_url = Some(redis_url());
        settings.limits.shared_store_prefix = prefix.clone();
        // Generous: a loaded test machine must not make the test fall back.
        settings.limits.shared_store_timeout_ms = 2_000;
    };
    let a = spawn_app_with(backend, shared).await;
    let b = spawn_app_with(backend, shared).await;
    (a, b)
}

async fn call(app: &TestApp, token: Option<&str>) -> HttpAnswer {
    app.post_graphql(token, &json!({ "query": "{ __typename }" }), &[])
        .await
}

fn assert_limited(answer: &HttpAnswer) {
    assert_eq!(answer.status, 429, "{}", answer.body);
    answer.gql().assert_error("RATE_LIMITED");
    assert!(answer.header("retry-after").is_some());
}

/// The WebSocket `connection_init` of `token` on `app`: acknowledged or not.
async fn ws_init_acknowledged(app: &TestApp, token: &str) -> bool {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let mut req = app.ws_url("/graphql/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("an answer or a close");
    matches!(&answer, Some(Ok(Message::Text(t))) if t.contains("connection_ack"))
}

async fn a_budget_spent_on_one_instance_is_refused_on_another(backend: Backend) {
    let (a, b) = two_instances(backend).await;
    // A partner registered with both (each instance has its own database here; the
    // bucket is keyed by the token's role and subject, as in one process).
    let on_a = a.partner("shared-partner", &[Domain::Procurement]).await;
    let on_b = b.partner("shared-partner", &[Domain::Procurement]).await;
    for _ in 0..3 {
        assert_eq!(call(&a, Some(&on_a)).await.status, 200);
    }
    assert_limited(&call(&b, Some(&on_b)).await);
    assert_limited(&call(&a, Some(&on_a)).await);
    // Another partner is not affected, on either instance.
    let other = b.partner("other-partner", &[Domain::Procurement]).await;
    assert_eq!(call(&b, Some(&other)).await.status, 200);

    // WebSocket operations are charged to the same buckets: a subject that spent its
    // budget over HTTP on A is refused at connection_init on B. (The upgrade takes one
    // of the address's two anonymous tokens.)
    let auditor_a = a.token(api::auth::Role::Auditor, "shared-auditor");
    let auditor_b = b.token(api::auth::Role::Auditor, "shared-auditor");
    for _ in 0..3 {
        assert_eq!(call(&a, Some(&auditor_a)).await.status, 200);
    }
    assert!(!ws_init_acknowledged(&b, &auditor_b).await);

    // Anonymous callers by address, across instances: one token is left after the
    // upgrade above; taken on A, B refuses.
    assert_eq!(call(&a, None).await.status, 200);
    assert_limited(&call(&b, None).await);
}

/// A WebSocket operation on B is charged to the same shared bucket as HTTP requests on
/// A: the socket is acknowledged (one token), A spends the rest, B's `subscribe` is
/// refused with `RATE_LIMITED` (the socket stays open).
async fn websocket_operations_share_the_bucket_across_instances(backend: Backend) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let (a, b) = two_instances(backend).await;
    let on_a = a.token(api::auth::Role::Auditor, "ws-auditor");
    let on_b = b.token(api::auth::Role::Auditor, "ws-auditor");
    let mut req = b.ws_url("/graphql/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {on_b}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let ack = read_text(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    for _ in 0..2 {
        assert_eq!(call(&a, Some(&on_a)).await.status, 200);
    }
    let op = json!({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}});
    ws.send(Message::Text(op.to_string().into())).await.unwrap();
    let msg = read_text(&mut ws).await;
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(
        msg["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{msg}"
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn read_text(ws: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// A document refused for its cost puts its caller's shared bucket into debt: the next
/// request, on the other instance, is refused at the door.
async fn a_refused_documents_debt_is_shared(backend: Backend) {
    let (a, b) = two_instances(backend).await;
    let on_a = a.token(api::auth::Role::Auditor, "costly-auditor");
    let on_b = b.token(api::auth::Role::Auditor, "costly-auditor");
    let aliases: Vec<String> = (0..30)
        .map(|i| format!("a{i}: publicListings(first: 500) {{ edges {{ node {{ id }} }} }}"))
        .collect();
    let costly = json!({ "query": format!("{{ {} }}", aliases.join(" ")) });
    let refused = a.post_graphql(Some(&on_a), &costly, &[]).await;
    refused.gql().assert_error("QUERY_TOO_COMPLEX");
    assert_limited(&call(&b, Some(&on_b)).await);
}

/// Nothing listens at the store's address: every instance falls back to its own buckets
/// (the limits still apply, per process), quickly, and says so in `/metrics`.
async fn an_unreachable_store_falls_back_to_per_process_limits(backend: Backend) {
    let dead = |settings: &mut Settings| {
        strict(settings);
        settings.limits.shared_store_url = Some("redis://127.0.0.1:1".into());
        settings.limits.shared_store_timeout_ms = 50;
        // Ask the store again on every request: each one must still be quick.
        settings.limits.shared_store_retry_ms = 0;
    };
    let app = spawn_app_with(backend, dead).await;
    let partner = app
        .partner("fallback-partner", &[Domain::Procurement])
        .await;
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(call(&app, Some(&partner)).await.status, 200);
    }
    assert_limited(&call(&app, Some(&partner)).await);
    // Four requests, each of which tried the store first: far below a second each.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures = metrics
        .lines()
        .find_map(|l| l.strip_prefix("registry_rate_limit_store_failures_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(failures >= 4.0, "{failures}\n{metrics}");
}

/// A Redis of the test's own on a free loopback port, stopped on drop.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    /// `None` (the test then says SKIPPED) when redis-server is not installed.
    fn start(port: Option<u16>) -> Option<Self> {
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port")
        });
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { port, child })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the limit of a fresh subject spent through `a` holds on `b`.
async fn shared_now(a: &TestApp, b: &TestApp, subject: &str) -> bool {
    let on_a = a.token(api::auth::Role::Auditor, subject);
    let on_b = b.token(api::auth::Role::Auditor, subject);
    for _ in 0..3 {
        assert_eq!(call(a, Some(&on_a)).await.status, 200);
    }
    call(b, Some(&on_b)).await.status == 429
}

/// The store dies while two instances run: each goes on with its own buckets (requests
/// are answered, limits still apply per process), and once the store is back the
/// limits are shared again, without a restart.
async fn instances_fall_back_while_the_store_is_down_and_share_again_after(backend: Backend) {
    let Some(mut redis) = OwnRedis::start(None) else {
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
        return;
    };
    let url = redis.url();
    let adjust = |settings: &mut Settings| {
        strict(settings);
        settings.limits.shared_store_url = Some(url.clone());
        settings.limits.shared_store_prefix = "outage:".into();
        settings.limits.shared_store_timeout_ms = 500;
        settings.limits.shared_store_retry_ms = 100;
    };
    let a = spawn_app_with(backend, adjust).await;
    let b = spawn_app_with(backend, adjust).await;
    assert!(shared_now(&a, &b, "before-outage").await);

    redis.stop();
    // Each instance alone: a subject spent on A is not spent on B, and A still refuses
    // past its own burst.
    let on_a = a.token(api::auth::Role::Auditor, "during-outage");
    let on_b = b.token(api::auth::Role::Auditor, "during-outage");
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(call(&a, Some(&on_a)).await.status, 200);
    }
    assert_limited(&call(&a, Some(&on_a)).await);
    assert_eq!(call(&b, Some(&on_b)).await.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Back on the same port: shared again within a few retry intervals.
    let port = redis.port;
    let _redis = OwnRedis::start(Some(port)).expect("redis-server restarts");
    let mut shared = false;
    for round in 0..30 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if shared_now(&a, &b, &format!("after-outage-{round}")).await {
            shared = true;
            break;
        }
    }
    assert!(
        shared,
        "the limits were not shared again after the store came back"
    );
}

tests::on_both_backends_by_backend!(
    a_budget_spent_on_one_instance_is_refused_on_another,
    a_refused_documents_debt_is_shared,
    websocket_operations_share_the_bucket_across_instances,
    an_unreachable_store_falls_back_to_per_process_limits,
    instances_fall_back_while_the_store_is_down_and_share_again_after,
);
