//! A WebSocket is trusted no more than an HTTP request (issue 13, rows 1, 2 and 7), with a
//! real client (tokio-tungstenite) against the real server, on both backends: every
//! operation is authorised when it is sent (token expiry closes the socket with 4403, a
//! deactivated partner is refused and its subscription ended), queries and mutations run
//! under the request timeout, the rate limit and the Idempotency-Key; and a socket's
//! cost is bounded before and after authentication (message size, `connection_init`
//! timeout, operations per connection, connections per subject and per address).

use api::auth::Role;
use api::auth::tokens::TokenRequest;
use api::config::Settings;
use api::domain::measures::Domain;
use chrono::Duration;
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use std::time::{Duration as StdDuration, Instant};
use tests::{Backend, TestApp, on_both_backends, on_both_backends_with, valid_code};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SECOND: StdDuration = StdDuration::from_secs(1);

/// What the server sent next.
#[derive(Debug)]
enum Got {
    Text(Value),
    /// A close frame's code and reason (`None` when the frame had none).
    Closed(Option<u16>, String),
    /// The connection ended without a close frame, or failed.
    Ended(String),
    TimedOut,
}

async fn connect_with(app: &TestApp, protocol: &'static str) -> Ws {
    let mut req = app.ws_url("/graphql/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(protocol)
    );
    ws
}

async fn connect(app: &TestApp) -> Ws {
    connect_with(app, "graphql-transport-ws").await
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

async fn recv(ws: &mut Ws, within: StdDuration) -> Got {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let Ok(msg) = tokio::time::timeout_at(deadline, ws.next()).await else {
            return Got::TimedOut;
        };
        match msg {
            Some(Ok(Message::Text(t))) => return Got::Text(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(f) => Got::Closed(Some(u16::from(f.code)), f.reason.to_string()),
                    None => Got::Closed(None, String::new()),
                };
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Got::Ended(e.to_string()),
            None => return Got::Ended("ended".into()),
        }
    }
}

/// Reads until the server closes; returns the close code and reason, or fails the test.
async fn closed(ws: &mut Ws, within: StdDuration) -> (u16, String) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv(ws, left).await {
            Got::Text(_) => continue,
            Got::Closed(Some(code), reason) => return (code, reason),
            other => panic!("expected a close frame within {within:?}, got {other:?}"),
        }
    }
}

async fn init(ws: &mut Ws, token: &str) {
    send(
        ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    match recv(ws, 5 * SECOND).await {
        Got::Text(ack) if ack["type"] == "connection_ack" => {}
        other => panic!("expected connection_ack, got {other:?}"),
    }
}

async fn subscribe(ws: &mut Ws, id: &str, payload: Value) {
    send(
        ws,
        json!({"id": id, "type": "subscribe", "payload": payload}),
    )
    .await;
}

async fn close_code(ws: &mut Ws, within: StdDuration) -> u16 {
    closed(ws, within).await.0
}

/// The next text message, which must belong to operation `id`.
async fn message_for(ws: &mut Ws, id: &str, within: StdDuration) -> Value {
    match recv(ws, within).await {
        Got::Text(msg) => {
            assert_eq!(msg["id"], id, "{msg}");
            msg
        }
        other => panic!("expected a message for {id} within {within:?}, got {other:?}"),
    }
}

/// A query or mutation's answer: its `next` payload (after which `complete` must come).
async fn answer(ws: &mut Ws, id: &str) -> Value {
    let next = message_for(ws, id, 5 * SECOND).await;
    assert_eq!(next["type"], "next", "{next}");
    let done = message_for(ws, id, 5 * SECOND).await;
    assert_eq!(done["type"], "complete", "{done}");
    next["payload"].clone()
}

/// The code of the `error` message that refused operation `id`.
async fn refusal(ws: &mut Ws, id: &str) -> String {
    let msg = message_for(ws, id, 5 * SECOND).await;
    assert_eq!(msg["type"], "error", "{msg}");
    msg["payload"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const LISTS: &str = "{ lists { code } }";
const UPSERT: &str = "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id uscc } }";
const CHECK: &str = "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { decision } }";
const FEED: &str = "subscription { registryChanged { cursor } }";

// --- Row 1: every operation is authorised when it is sent ------------------------------

/// An admin token that expires mid-connection: the socket closes with 4403 at the
/// expiry (not at the next message), and a mutation sent afterwards runs nothing.
async fn an_expired_token_closes_the_socket_and_runs_nothing(app: TestApp) {
    let short = app.token_for(TokenRequest {
        subject: "admin-short".into(),
        role: Role::Admin,
        domains: Vec::new(),
        region: None,
        ttl: Duration::seconds(2),
    });
    let mut ws = connect(&app).await;
    init(&mut ws, &short).await;
    subscribe(&mut ws, "1", json!({"query": LISTS})).await;
    assert!(answer(&mut ws, "1").await["data"]["lists"].is_array());
    let started = Instant::now();
    let (code, reason) = closed(&mut ws, 4 * SECOND).await;
    assert_eq!(code, 4403);
    assert!(reason.contains("expired"), "{reason}");
    assert!(started.elapsed() < 3 * SECOND, "{:?}", started.elapsed());

    // The client insists: the mutation does not run, nothing is audited.
    let audited = app.count("audit_events").await;
    let code = valid_code("441802", 501);
    let _ = ws
        .send(Message::Text(
            json!({"id": "2", "type": "subscribe", "payload": {
                "query": UPSERT, "variables": {"i": {"uscc": code, "name": "过期令牌公司"}}}})
            .to_string()
            .into(),
        ))
        .await;
    // Real time: gives the refused operation the chance to run (it must not).
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(app.count("audit_events").await, audited);
    assert_eq!(
        app.count_where("operators", &format!("uscc = '{code}'"))
            .await,
        0
    );
}

fn short_partner_cache(settings: &mut Settings) {
    settings.auth.partner_cache_seconds = 2;
}

/// A partner deactivated over HTTP is refused `check` at its next WebSocket operation,
/// and its running `registryChanged` ends (FORBIDDEN) within the partner cache time.
async fn a_deactivated_partner_is_refused_and_its_subscription_ends(app: TestApp) {
    let partner = app.partner("gov-leaving", &[Domain::Procurement]).await;
    let code = valid_code("441802", 502);
    let mut ws = connect(&app).await;
    init(&mut ws, &partner).await;
    subscribe(
        &mut ws,
        "c1",
        json!({"query": CHECK, "variables": {"u": code}}),
    )
    .await;
    assert_eq!(
        answer(&mut ws, "c1").await["data"]["check"]["decision"],
        "CLEAR"
    );
    subscribe(&mut ws, "feed", json!({"query": FEED})).await;
    // Real time: the subscription must be running before the change commits.
    tokio::time::sleep(StdDuration::from_millis(200)).await;

    app.gql(
        Some(&app.admin()),
        "mutation { deactivatePartner(subject: \"gov-leaving\", reason: \"合作终止\") { active } }",
        json!({}),
    )
    .await
    .data();
    let deactivated = Instant::now();
    subscribe(
        &mut ws,
        "c2",
        json!({"query": CHECK, "variables": {"u": code}}),
    )
    .await;
    let mut refused = std::collections::HashMap::new();
    while refused.len() < 2 {
        match recv(&mut ws, 5 * SECOND).await {
            Got::Text(msg) => {
                assert_eq!(msg["type"], "error", "{msg}");
                let id = msg["id"].as_str().unwrap().to_string();
                let code = msg["payload"][0]["extensions"]["code"].clone();
                refused.insert(id, (code, deactivated.elapsed()));
            }
            other => panic!("expected the operations to be refused, got {other:?}"),
        }
    }
    assert_eq!(refused["c2"].0, "FORBIDDEN");
    assert_eq!(refused["feed"].0, "FORBIDDEN");
    // Within the cache time (2 s), with a little room for a loaded machine.
    let ended = refused["feed"].1;
    assert!(ended < StdDuration::from_millis(2_500), "{ended:?}");
    // Only the answered check was recorded.
    assert_eq!(app.count("check_records").await, 1);
}

fn short_request_timeout(settings: &mut Settings) {
    settings.limits.request_timeout_ms = 500;
}

/// A WebSocket mutation that runs longer than the request timeout is stopped with
/// TIMEOUT, as over HTTP. (It is held up by a lock the test takes on the database.)
async fn a_slow_operation_times_out(app: TestApp) {
    let mut ws = connect(&app).await;
    init(&mut ws, &app.admin()).await;
    let lock = app.db.begin().await.unwrap();
    match app.backend {
        // Every mutation writes the audit head.
        Backend::Postgres => lock
            .execute_unprepared("LOCK TABLE audit_head IN EXCLUSIVE MODE")
            .await
            .unwrap(),
        // Any write takes SQLite's one write lock.
        Backend::Sqlite => lock
            .execute_unprepared("CREATE TABLE ws_test_lock (x INTEGER)")
            .await
            .unwrap(),
    };
    let code = valid_code("441802", 503);
    let started = Instant::now();
    subscribe(
        &mut ws,
        "slow",
        json!({"query": UPSERT, "variables": {"i": {"uscc": code, "name": "慢操作公司"}}}),
    )
    .await;
    let msg = message_for(&mut ws, "slow", 3 * SECOND).await;
    let elapsed = started.elapsed();
    lock.rollback().await.unwrap();
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["payload"][0]["extensions"]["code"], "TIMEOUT", "{msg}");
    assert!(elapsed < 2 * SECOND, "{elapsed:?}");
    // The socket goes on serving.
    subscribe(&mut ws, "after", json!({"query": LISTS})).await;
    assert!(answer(&mut ws, "after").await["data"]["lists"].is_array());
}

fn low_rate(settings: &mut Settings) {
    settings.limits.rate_per_second = 1;
    settings.limits.rate_burst = 3;
}

/// Each WebSocket operation is charged to the token subject's bucket, the same one its
/// HTTP requests use.
async fn operations_are_rate_limited(app: TestApp) {
    let admin = app.admin();
    let mut ws = connect(&app).await;
    // The burst is 3: connection_init takes one, two operations the rest.
    init(&mut ws, &admin).await;
    for id in ["1", "2"] {
        subscribe(&mut ws, id, json!({"query": LISTS})).await;
        assert!(answer(&mut ws, id).await["data"]["lists"].is_array());
    }
    subscribe(&mut ws, "3", json!({"query": LISTS})).await;
    let msg = message_for(&mut ws, "3", 5 * SECOND).await;
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(msg["payload"][0]["extensions"]["details"]["retryAfter"].as_u64() >= Some(1));
    // Over HTTP the same subject is limited too: one bucket.
    let http = app.gql(Some(&admin), LISTS, json!({})).await;
    assert_eq!(http.status, 429, "{:?}", http.body);
}

/// A mutation keyed with `extensions.idempotencyKey` runs once: a retry gets the stored
/// answer (marked `idempotentReplayed`), the same key with another request is refused.
async fn a_keyed_mutation_runs_once(app: TestApp) {
    let mut ws = connect(&app).await;
    init(&mut ws, &app.admin()).await;
    let register = |subject: &str| {
        json!({
            "query": "mutation($i: RegisterPartnerInput!) { registerPartner(input: $i) { subject active } }",
            "variables": {"i": {"subject": subject, "name": "某平台", "domains": ["BIDDING"]}},
            "extensions": {"idempotencyKey": "ws-key-1"}
        })
    };
    subscribe(&mut ws, "1", register("gov-keyed")).await;
    let first = answer(&mut ws, "1").await;
    assert_eq!(
        first["data"]["registerPartner"]["subject"], "gov-keyed",
        "{first}"
    );
    let audited = app.count("audit_events").await;
    // Registering the same subject again would be refused: the replay shows it did not run.
    subscribe(&mut ws, "2", register("gov-keyed")).await;
    let replay = answer(&mut ws, "2").await;
    assert_eq!(replay["data"], first["data"], "{replay}");
    assert_eq!(replay["extensions"]["idempotentReplayed"], true, "{replay}");
    assert_eq!(app.count("audit_events").await, audited);
    subscribe(&mut ws, "3", register("gov-other")).await;
    assert_eq!(refusal(&mut ws, "3").await, "IDEMPOTENCY_KEY_REUSED");
    // A malformed key is refused before anything runs.
    let mut bad = register("gov-third");
    bad["extensions"]["idempotencyKey"] = json!("has space");
    subscribe(&mut ws, "4", bad).await;
    assert_eq!(refusal(&mut ws, "4").await, "IDEMPOTENCY_KEY_INVALID");
    assert_eq!(
        app.count_where("partners", "subject = 'gov-third'").await,
        0
    );
}

// --- Row 2: a socket's cost is bounded before authentication -------------------------

fn fragment(payload: Vec<u8>, first: bool, last: bool) -> Message {
    let opcode = if first {
        OpCode::Data(Data::Text)
    } else {
        OpCode::Data(Data::Continue)
    };
    Message::Frame(Frame::message(payload, opcode, last))
}

/// Continuation frames beyond `limits.ws_max_message_bytes` (64 KiB) close an
/// unauthenticated socket with 1009 as soon as the limit is passed, as does one
/// oversized frame; a fragmented message under the limit is read.
async fn oversized_messages_close_the_socket_before_authentication(app: TestApp) {
    // A message of 16 KiB fragments that never ends: one fragment at a time, so that
    // the server has read all that was sent when it closes.
    let mut ws = connect(&app).await;
    let mut sent = 0;
    let closed = loop {
        assert!(
            sent < 1024 * 1024,
            "1 MiB of continuation frames and still open"
        );
        ws.send(fragment(vec![b' '; 16 * 1024], sent == 0, false))
            .await
            .unwrap();
        sent += 16 * 1024;
        match recv(&mut ws, StdDuration::from_millis(200)).await {
            Got::TimedOut => continue,
            Got::Closed(code, _) => break code,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed, Some(1009));
    // Closed at the first fragment past the limit, not later.
    assert_eq!(sent, 80 * 1024);

    // One frame over the limit: refused from its header, before its payload is read
    // (the server may reset the connection with the unread payload behind the close).
    let mut ws = connect(&app).await;
    let _ = ws.send(Message::Text(" ".repeat(100 * 1024).into())).await;
    match recv(&mut ws, 5 * SECOND).await {
        Got::Closed(code, _) => assert_eq!(code, Some(1009)),
        Got::Ended(why) => eprintln!("reset with the payload unread: {why}"),
        other => panic!("expected the socket to close, got {other:?}"),
    }

    // 48 KiB in three fragments is under the limit: a connection_init padded to it works.
    let mut ws = connect(&app).await;
    let init = json!({"type": "connection_init", "payload": {
        "Authorization": format!("Bearer {}", app.admin()), "pad": "x".repeat(47 * 1024)}})
    .to_string();
    let bytes = init.into_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(bytes.len() / 3 + 1).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        ws.send(fragment(chunk.to_vec(), i == 0, i + 1 == chunks.len()))
            .await
            .unwrap();
    }
    match recv(&mut ws, 5 * SECOND).await {
        Got::Text(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("expected connection_ack, got {other:?}"),
    }
}

fn quick_init(settings: &mut Settings) {
    settings.limits.ws_init_timeout_ms = 300;
}

/// No `connection_init` within `limits.ws_init_timeout_ms`: closed with 4408. A socket
/// that did initialise in time is not affected.
async fn connection_init_must_come_in_time(app: TestApp) {
    let mut idle = connect(&app).await;
    let mut ready = connect(&app).await;
    init(&mut ready, &app.admin()).await;
    let started = Instant::now();
    let (code, reason) = closed(&mut idle, 3 * SECOND).await;
    assert_eq!(
        (code, reason.as_str()),
        (4408, "Connection initialisation timeout")
    );
    assert!(started.elapsed() < 2 * SECOND, "{:?}", started.elapsed());
    // Real time: lets the server finish closing the idle socket.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    subscribe(&mut ready, "1", json!({"query": LISTS})).await;
    assert!(answer(&mut ready, "1").await["data"]["lists"].is_array());
}

// --- Row 7: operations per connection, connections per subject and address ---------

fn few_subscriptions(settings: &mut Settings) {
    settings.limits.ws_max_subscriptions = 2;
}

/// The (N+1)th running operation on one socket is refused (TOO_MANY_SUBSCRIPTIONS);
/// completing one frees its place; reusing a running id closes the socket (4409).
async fn operations_per_connection_are_bounded(app: TestApp) {
    let partner = app.partner("gov-many", &[Domain::Bidding]).await;
    let mut ws = connect(&app).await;
    init(&mut ws, &partner).await;
    subscribe(&mut ws, "a", json!({"query": FEED})).await;
    subscribe(&mut ws, "b", json!({"query": FEED})).await;
    subscribe(&mut ws, "c", json!({"query": FEED})).await;
    let msg = message_for(&mut ws, "c", 5 * SECOND).await;
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(
        msg["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    assert_eq!(msg["payload"][0]["extensions"]["details"]["max"], 2);
    send(&mut ws, json!({"id": "a", "type": "complete"})).await;
    subscribe(&mut ws, "d", json!({"query": LISTS})).await;
    assert!(answer(&mut ws, "d").await["data"]["lists"].is_array());
    subscribe(&mut ws, "b", json!({"query": FEED})).await;
    assert_eq!(close_code(&mut ws, 5 * SECOND).await, 4409);
}

fn few_connections(settings: &mut Settings) {
    settings.limits.ws_max_connections_per_subject = 2;
    settings.limits.ws_max_pending_per_address = 2;
}

/// A subject holds at most `limits.ws_max_connections_per_subject` connections (the next
/// is closed with 1013, Try Again Later), and an address at most
/// `limits.ws_max_pending_per_address` sockets that have not initialised (the next
/// upgrade is refused with HTTP 429 TOO_MANY_CONNECTIONS).
async fn connections_per_subject_and_address_are_bounded(app: TestApp) {
    let admin = app.admin();
    let mut first = connect(&app).await;
    init(&mut first, &admin).await;
    let mut second = connect(&app).await;
    init(&mut second, &admin).await;
    let mut third = connect(&app).await;
    send(
        &mut third,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(close_code(&mut third, 5 * SECOND).await, 1013);
    // Another subject is counted apart, and a closed connection frees its place.
    let mut auditor = connect(&app).await;
    init(&mut auditor, &app.auditor()).await;
    first.close(None).await.unwrap();
    let mut ended = false;
    for _ in 0..50 {
        let mut again = connect(&app).await;
        send(
            &mut again,
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {admin}")}}),
        )
        .await;
        if let Got::Text(ack) = recv(&mut again, 5 * SECOND).await {
            assert_eq!(ack["type"], "connection_ack");
            ended = true;
            break;
        }
        // Real time: the server gives the place back when it has closed the socket.
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert!(ended, "the closed connection's place was not given back");

    // Two sockets waiting for connection_init: the third upgrade is refused.
    let _waiting = [connect(&app).await, connect(&app).await];
    let mut req = app.ws_url("/graphql/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                "TOO_MANY_CONNECTIONS"
            );
        }
        other => panic!(
            "expected HTTP 429, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

/// Breaking graphql-transport-ws closes the socket with the protocol's codes.
async fn protocol_errors_close_with_the_specs_codes(app: TestApp) {
    // subscribe before connection_ack: 4401.
    let mut ws = connect(&app).await;
    subscribe(&mut ws, "1", json!({"query": LISTS})).await;
    assert_eq!(close_code(&mut ws, 5 * SECOND).await, 4401);
    // Not JSON, or not a message type of the protocol: 4400.
    for bad in ["not json", r#"{"type": "shout"}"#] {
        let mut ws = connect(&app).await;
        ws.send(Message::Text(bad.into())).await.unwrap();
        assert_eq!(close_code(&mut ws, 5 * SECOND).await, 4400, "{bad}");
    }
    // A second connection_init: 4429.
    let mut ws = connect(&app).await;
    init(&mut ws, &app.admin()).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin())}}),
    )
    .await;
    assert_eq!(close_code(&mut ws, 5 * SECOND).await, 4429);
    // No token, or a bad one: 4403 before any acknowledgement.
    for payload in [json!({}), json!({"Authorization": "Bearer not-a-token"})] {
        let mut ws = connect(&app).await;
        send(
            &mut ws,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        assert_eq!(close_code(&mut ws, 5 * SECOND).await, 4403);
    }
}

/// The older subscriptions-transport-ws subprotocol (`graphql-ws`) keeps working, with
/// its own message names.
async fn the_older_subprotocol_still_works(app: TestApp) {
    let mut ws = connect_with(&app, "graphql-ws").await;
    init(&mut ws, &app.admin()).await;
    send(
        &mut ws,
        json!({"id": "1", "type": "start", "payload": {"query": LISTS}}),
    )
    .await;
    let data = message_for(&mut ws, "1", 5 * SECOND).await;
    assert_eq!(data["type"], "data", "{data}");
    assert!(data["payload"]["data"]["lists"].is_array());
    assert_eq!(
        message_for(&mut ws, "1", 5 * SECOND).await["type"],
        "complete"
    );
}

fn short_linger(settings: &mut Settings) {
    settings.limits.close_linger_ms = 100;
}

/// A client that keeps flooding a socket it was told to close (1009) is cut off once
/// `limits.close_linger_ms` has passed: the server drops the TCP connection instead of
/// reading and discarding at full speed for actix-web's default second. Raw TCP, because
/// a WebSocket client library stops sending after it receives the close frame.
async fn a_socket_flooded_after_its_close_is_dropped(app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let upgrade = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    let mut head = [0u8; 1024];
    let n = tcp.read(&mut head).await.unwrap();
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"),
        "upgrade refused: {}",
        String::from_utf8_lossy(&head[..n])
    );
    let (mut reader, mut writer) = tcp.into_split();
    // The server's frames (the close), read so that its writes never block.
    let reading = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    // Masked 64 KiB fragments (a zero mask), the first a text frame, none final.
    let fragment = |first: bool| {
        let mut frame = vec![if first { 0x01 } else { 0x00 }, 0x80 | 127];
        frame.extend_from_slice(&(64u64 * 1024).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.resize(frame.len() + 64 * 1024, b' ');
        frame
    };
    let started = Instant::now();
    let mut sent: u64 = 0;
    let cut_off = loop {
        if started.elapsed() > 10 * SECOND {
            break None;
        }
        match writer.write_all(&fragment(sent == 0)).await {
            Ok(()) => sent += 64 * 1024,
            Err(e) => break Some(e),
        }
    };
    let elapsed = started.elapsed();
    reading.abort();
    eprintln!(
        "flooding socket cut off after {elapsed:?} and {} MiB: {cut_off:?}",
        sent / (1024 * 1024)
    );
    assert!(cut_off.is_some(), "still connected after 10 s of flooding");
    // 100 ms of draining plus scheduling; actix-web's default alone would be 1 s.
    assert!(
        elapsed < StdDuration::from_millis(800),
        "cut off only after {elapsed:?}"
    );
}

/// A forged file marker over WebSocket (no request there carries a file): async-graphql's
/// `Upload` panicked on it inside the operation's task, which then never answered and kept
/// its id taken for the socket's life. Refused like over HTTP, and the id is free again.
async fn a_forged_upload_is_refused_and_frees_its_id(app: TestApp) {
    let mut ws = connect(&app).await;
    init(&mut ws, &app.admin()).await;
    let import = "mutation($f: Upload!) { importListings(file: $f) { batchId } }";
    for marker in ["#__graphql_file__:x", "#__graphql_file__:0"] {
        subscribe(
            &mut ws,
            "1",
            json!({"query": import, "variables": {"f": marker}}),
        )
        .await;
        let refused = answer(&mut ws, "1").await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{refused}"
        );
        assert_eq!(refused["data"], Value::Null, "{refused}");
    }
    let literal = r##"mutation { importListings(file: "#__graphql_file__:x") { batchId } }"##;
    subscribe(&mut ws, "1", json!({"query": literal})).await;
    let refused = answer(&mut ws, "1").await;
    assert_eq!(
        refused["errors"][0]["extensions"]["details"]["reason"], "NO_SUCH_UPLOAD",
        "{refused}"
    );
    subscribe(&mut ws, "1", json!({"query": LISTS})).await;
    assert!(answer(&mut ws, "1").await["data"]["lists"].is_array());
}

on_both_backends!(
    a_forged_upload_is_refused_and_frees_its_id,
    an_expired_token_closes_the_socket_and_runs_nothing,
    a_keyed_mutation_runs_once,
    oversized_messages_close_the_socket_before_authentication,
    the_older_subprotocol_still_works,
    protocol_errors_close_with_the_specs_codes,
);

on_both_backends_with!(
    a_deactivated_partner_is_refused_and_its_subscription_ends => short_partner_cache,
    a_slow_operation_times_out => short_request_timeout,
    operations_are_rate_limited => low_rate,
    connection_init_must_come_in_time => quick_init,
    operations_per_connection_are_bounded => few_subscriptions,
    connections_per_subject_and_address_are_bounded => few_connections,
    a_socket_flooded_after_its_close_is_dropped => short_linger,
    a_socket_whose_token_key_is_removed_is_closed => token_key_directory,
    a_replay_is_charged_to_the_subscriber => replay_budget,
);

fn token_key_directory(settings: &mut Settings) {
    settings.auth.signing_key_dir = Some(settings.data_dir.join("token-keys"));
    settings.auth.partner_cache_seconds = 2;
}

/// A token whose key is removed from the key directory stops working at once over HTTP;
/// an admin's socket opened with it (admins have no registration to re-read) completes
/// its running subscription and closes with 4403 within the re-check time (half the
/// partner cache time, here 1 s).
async fn a_socket_whose_token_key_is_removed_is_closed(app: TestApp) {
    let admin = app.admin();
    let old_kid = app.state.tokens.signing_kid().expect("a key directory");
    let mut ws = connect(&app).await;
    init(&mut ws, &admin).await;
    subscribe(&mut ws, "feed", json!({"query": FEED})).await;
    // Real time: the subscription must be running before the key goes.
    tokio::time::sleep(StdDuration::from_millis(200)).await;

    // The key is compromised: a new one is added and the old one deleted.
    let dir = app.state.settings.auth.signing_key_dir.clone().unwrap();
    api::service::receipts::add_key(&dir).unwrap();
    std::fs::remove_file(dir.join(format!("{old_kid}.pem"))).unwrap();
    app.state.tokens.reload().unwrap();
    let refused = app
        .post_graphql(Some(&admin), &json!({"query": "{ __typename }"}), &[])
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    let started = Instant::now();
    let mut completed = false;
    let (code, reason) = loop {
        match recv(&mut ws, 3 * SECOND).await {
            Got::Text(msg) if msg["type"] == "complete" && msg["id"] == "feed" => completed = true,
            Got::Text(msg) => panic!("expected the feed to complete, got {msg}"),
            Got::Closed(Some(code), reason) => break (code, reason),
            other => panic!("expected a close within 3 s, got {other:?}"),
        }
    };
    assert!(completed, "the running subscription was not completed");
    assert_eq!(code, 4403);
    assert!(reason.contains("no longer accepted"), "{reason}");
    assert!(started.elapsed() < 2 * SECOND, "{:?}", started.elapsed());
}

fn replay_budget(settings: &mut Settings) {
    settings.limits.rate_per_second = 1;
    settings.limits.rate_burst = 20;
}

/// A replay from an old cursor is paid like the `changes` pages it duplicates: each page
/// of events read is charged to the subscriber's bucket by its events and their
/// selection, and a replay the bucket cannot pay ends with `RATE_LIMITED` (here 20
/// events of about 100 points each, more than the 17 tokens left of a burst of 20). The
/// same replay with a small selection costs little and arrives whole.
async fn a_replay_is_charged_to_the_subscriber(app: TestApp) {
    let date = api::domain::china_date(chrono::Utc::now()).to_string();
    for i in 0..20u32 {
        // A subject per listing: each has its own bucket.
        let admin = app.token(Role::Admin, &format!("seed-{i}"));
        let code = valid_code("441802", 700 + i);
        app.create_operator(&code, &format!("回放测试{i}有限公司"))
            .await;
        let proposed = crate::listings::propose(&app, &admin, &code, &date).await;
        let id = proposed.data()["proposeListing"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        crate::listings::decide(&app, &admin, &id, 1, &date, None)
            .await
            .data();
    }
    let events = app.count("listing_revisions").await;
    assert!(events >= 20, "{events}");

    // The start of the feed: the cursor of revision 0.
    let start = api::graphql::connection::encode_cursor("change", "0");
    // Two points an event: the whole replay is paid for.
    let mut ws = connect(&app).await;
    init(&mut ws, &app.token(Role::Auditor, "mirror-small")).await;
    subscribe(
        &mut ws,
        "small",
        json!({
            "query": "subscription($a: String) { registryChanged(after: $a) { cursor } }",
            "variables": {"a": start},
        }),
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..20 {
        let msg = message_for(&mut ws, "small", 5 * SECOND).await;
        got.push(msg.clone());
        assert_eq!(msg["type"], "next", "{got:?}");
    }

    let heavy: String = (0..20)
        .map(|i| format!("a{i}: listing {{ uscc operatorName reason legalBasis }} "))
        .collect();
    let mut ws = connect(&app).await;
    init(&mut ws, &app.token(Role::Auditor, "mirror")).await;
    subscribe(
        &mut ws,
        "replay",
        json!({
            "query": format!("subscription($a: String) {{ registryChanged(after: $a) {{ cursor {heavy} }} }}"),
            "variables": {"a": start},
        }),
    )
    .await;
    // The first page is refused before any of its events is sent: the stream's error,
    // then its end.
    let msg = message_for(&mut ws, "replay", 5 * SECOND).await;
    let error = &msg["payload"]["errors"][0];
    assert_eq!(msg["type"], "next", "{msg}");
    assert!(
        msg["payload"]["data"].is_null(),
        "no event may arrive unpaid: {msg}"
    );
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{msg}");
    assert!(error["extensions"]["details"]["retryAfter"].as_u64() >= Some(1));
    let msg = message_for(&mut ws, "replay", 5 * SECOND).await;
    assert_eq!(msg["type"], "complete", "{msg}");
}
