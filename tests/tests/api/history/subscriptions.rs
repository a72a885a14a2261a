//! The feed pushed: `registryChanged` over graphql-transport-ws delivers a change within a
//! second, ends when its token expires, and refuses a connection without a valid token.

use super::change_feed::read_feed;
use crate::listings::{decide, listed, propose};
use api::auth::Role;
use api::auth::tokens::TokenRequest;
use api::domain::measures::Domain;
use chrono::{Duration, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::{TestApp, on_both_backends, valid_code};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn ws_connect(app: &TestApp, path: &str) -> Ws {
    let mut req = app.ws_url(path).into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    ws
}

pub(crate) async fn ws_send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol message (text), or the close frame's code and reason.
pub(crate) async fn ws_next(ws: &mut Ws, within: std::time::Duration) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "timed out".to_string())?;
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed: {frame:?}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("error: {e}")),
            None => return Err("ended".into()),
        }
    }
}

async fn a_subscription_receives_a_change_within_a_second(app: TestApp) {
    let partner = app.partner("gov-bidding", &[Domain::Bidding]).await;
    let code = valid_code("441882", 1);
    app.create_operator(&code, "连州订阅公司").await;
    let date = api::domain::china_date(Utc::now()).to_string();
    let id = propose(&app, &app.admin(), &code, &date).await.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    listed(&app, "441882", 2, Utc::now() - Duration::days(1)).await;
    let (before, end, _) = read_feed(&app, &partner, None, 100).await;
    assert_eq!(before.len(), 1);

    let mut ws = ws_connect(&app, "/graphql/ws").await;
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {partner}")}}),
    )
    .await;
    let ack = ws_next(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ack["type"], "connection_ack");
    // From the feed's current end: nothing can slip between subscribing and the mutation.
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($a: String) { registryChanged(after: $a) { cursor kind listingId uscc listCode inForce listing { operatorName } } }",
            "variables": {"a": end}
        }}),
    )
    .await;
    // Real time, not the registry's: the subscription must be running before the change commits.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    decide(&app, &app.admin(), &id, 1, &date, None).await.data();
    let next = ws_next(&mut ws, std::time::Duration::from_secs(1))
        .await
        .unwrap_or_else(|e| panic!("no event within a second of the mutation: {e}"));
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
    eprintln!("registryChanged: event received {elapsed:?} after the mutation was sent");
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["id"], "1");
    let event = &next["payload"]["data"]["registryChanged"];
    assert_eq!(event["kind"], "DECIDED");
    assert_eq!(event["listingId"], id.as_str());
    assert_eq!(event["uscc"], code.as_str());
    assert_eq!(event["inForce"], true);
    assert_eq!(event["listing"]["operatorName"], "连州订阅公司");
    // The pushed event is the feed's event: same cursor.
    let (feed, _, _) = read_feed(&app, &partner, end, 100).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0]["cursor"], event["cursor"]);
    ws_send(&mut ws, json!({"id": "1", "type": "complete"})).await;

    // A subscription ends when its token expires (also served on GET /graphql).
    app.register_partner("gov-short", &[Domain::Procurement])
        .await;
    let short = app.token_for(TokenRequest {
        subject: "gov-short".into(),
        role: Role::Partner,
        domains: Vec::new(),
        region: None,
        ttl: Duration::seconds(2),
    });
    let mut ws = ws_connect(&app, "/graphql").await;
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {short}")}}),
    )
    .await;
    let ack = ws_next(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ack["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "subscription { registryChanged { cursor } }"}}),
    )
    .await;
    let done = ws_next(&mut ws, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(done, json!({"type": "complete", "id": "2"}));

    // No token, or a bad one: closed before any acknowledgement (also on GET /graphql).
    for (path, payload) in [
        ("/graphql/ws", json!({})),
        ("/graphql", json!({"Authorization": "Bearer not-a-token"})),
    ] {
        let mut ws = ws_connect(&app, path).await;
        ws_send(
            &mut ws,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await;
        let refused = ws_next(&mut ws, std::time::Duration::from_secs(5)).await;
        assert!(refused.is_err(), "{path}: {refused:?}");
    }
}

on_both_backends!(a_subscription_receives_a_change_within_a_second,);
