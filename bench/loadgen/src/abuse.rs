//! Abusive clients of the isolation issue, each bounded in time, loopback only. They run
//! beside a partner's check load (`loadgen http`), so the harness can show how much of
//! its unloaded throughput the partner keeps. Every client keeps going when the server
//! refuses it (that is the point): it counts what it sent and how the server answered.
//!
//! - `ws-frames`: unauthenticated WebSocket sockets streaming one never-ending text
//!   message as continuation frames, before `connection_init` (row 2);
//! - `anon-aliases`: anonymous requests of 30 aliases of `publicListings(search: "%",
//!   first: 500)` (row 3);
//! - `subscriptions`: an authenticated socket asking for 5,000 `registryChanged`
//!   subscriptions, plus idle sockets that never send `connection_init` (row 7);
//! - `batch-aliases`: a partner's requests of 30 aliases of `checkBatch(usccs: 1,000
//!   codes)` (row 8).

use crate::client::{Connection, Target};
use bench_seed::Population;
use bench_seed::population::Rng;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    WsFrames,
    AnonAliases,
    Subscriptions,
    BatchAliases,
}

impl Kind {
    pub fn description(self) -> &'static str {
        match self {
            Kind::WsFrames => {
                "unauthenticated sockets streaming a never-ending text message in 64 KiB continuation frames before connection_init"
            }
            Kind::AnonAliases => {
                "anonymous requests of 30 aliases of publicListings(search: \"%\", first: 500)"
            }
            Kind::Subscriptions => {
                "one socket asking for 5,000 registryChanged subscriptions, the other sockets never sending connection_init"
            }
            Kind::BatchAliases => {
                "a second partner's requests of 30 aliases of checkBatch(usccs: 1,000 codes)"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::WsFrames => "ws-frames",
            Kind::AnonAliases => "anon-aliases",
            Kind::Subscriptions => "subscriptions",
            Kind::BatchAliases => "batch-aliases",
        }
    }
}

pub struct Abuse {
    pub kind: Kind,
    pub target: Target,
    /// The WebSocket endpoint (`ws://127.0.0.1:PORT/graphql/ws`).
    pub ws_url: String,
    /// The abusive partner's token (`subscriptions`, `batch-aliases`).
    pub token: Option<String>,
    pub clients: u32,
    pub duration: Duration,
    pub population: Option<Population>,
    pub seed: u64,
}

/// What the abusive clients did and how the server answered them.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    bytes: AtomicU64,
    answered: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn answer(&self, what: impl Into<String>) {
        if let Ok(mut map) = self.answered.lock() {
            *map.entry(what.into()).or_default() += 1;
        }
    }
}

#[derive(Serialize)]
pub struct AbuseReport {
    pub kind: Kind,
    pub clients: u32,
    pub duration_s: f64,
    pub sent: u64,
    pub bytes_sent: u64,
    /// How the server answered, by outcome (HTTP status and GraphQL code, close code, …).
    pub answered: BTreeMap<String, u64>,
}

impl AbuseReport {
    /// As a line of `results.jsonl`: kind `abuse`, the abuser's name as scenario, what it
    /// sent per second as `rps` and how it was answered in `note`.
    pub fn record(&self, scale: &str) -> crate::stats::Record {
        let answered: Vec<String> = self
            .answered
            .iter()
            .map(|(what, n)| format!("{what} ×{n}"))
            .collect();
        crate::stats::Record {
            kind: "abuse".into(),
            scenario: self.kind.name().into(),
            query: self.kind.description().into(),
            scale: scale.into(),
            connections: self.clients,
            duration_s: self.duration_s,
            summary: crate::stats::Summary {
                requests: self.sent,
                rps: self.sent as f64 / self.duration_s.max(1e-9),
                ..Default::default()
            },
            note: Some(answered.join(", ")),
            ..Default::default()
        }
    }
}

/// The 30-alias anonymous document of row 3.
fn anon_aliases_document() -> String {
    let fields: Vec<String> = (0..30)
        .map(|i| {
            format!("a{i}: publicListings(search: \"%\", first: 500) {{ edges {{ node {{ id uscc operatorName reason }} }} }}")
        })
        .collect();
    format!("query AbuseAnon {{ {} }}", fields.join(" "))
}

/// The 30-alias `checkBatch` document of row 8 (codes passed as one variable).
fn batch_aliases_document() -> String {
    let fields: Vec<String> = (0..30)
        .map(|i| format!("b{i}: checkBatch(usccs: $u, domain: PROCUREMENT) {{ decision }}"))
        .collect();
    format!(
        "query AbuseBatch($u: [String!]!) {{ {} }}",
        fields.join(" ")
    )
}

/// The outcome of a GraphQL answer: `200`, `200 COST_LIMIT_EXCEEDED`, `429 RATE_LIMITED`, …
fn outcome(status: u16, body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = value["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_string);
    match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

impl Abuse {
    pub async fn run(self) -> anyhow::Result<AbuseReport> {
        let abuse = Arc::new(self);
        let tally = Arc::new(Tally::default());
        let stop = Instant::now() + abuse.duration;
        let mut tasks = Vec::new();
        for id in 0..abuse.clients.max(1) {
            let (abuse, tally) = (abuse.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                let run = async {
                    match abuse.kind {
                        Kind::WsFrames => abuse.ws_frames(&tally, stop).await,
                        Kind::AnonAliases | Kind::BatchAliases => {
                            abuse.http_loop(&tally, stop, id).await
                        }
                        Kind::Subscriptions => abuse.subscriptions(&tally, stop, id).await,
                    }
                };
                // Bounded whatever the server does: a client stuck on a socket the server
                // never answers is abandoned at the end of the window.
                let _ = tokio::time::timeout_at(stop.into(), run).await;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let answered = tally.answered.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(AbuseReport {
            kind: abuse.kind,
            clients: abuse.clients,
            duration_s: abuse.duration.as_secs_f64(),
            sent: tally.sent.load(Ordering::Relaxed),
            bytes_sent: tally.bytes.load(Ordering::Relaxed),
            answered,
        })
    }

    fn ws_request(
        &self,
    ) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
        let mut request = self.ws_url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        Ok(request)
    }

    async fn connect(
        &self,
    ) -> anyhow::Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    > {
        let config = WebSocketConfig::default().max_message_size(None);
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(self.ws_request()?, Some(config), false)
                .await?;
        Ok(socket)
    }

    /// Row 2: one text message that never ends, 64 KiB per continuation frame, sent
    /// before `connection_init`; a new socket each time the server closes one.
    async fn ws_frames(&self, tally: &Tally, stop: Instant) {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        while Instant::now() < stop {
            let mut socket = match self.connect().await {
                Ok(s) => s,
                Err(e) => {
                    tally.answer(format!("connect refused: {}", short(&e.to_string())));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let mut first = true;
            let closed = loop {
                if Instant::now() >= stop {
                    break None;
                }
                let opcode = if first {
                    OpCode::Data(Data::Text)
                } else {
                    OpCode::Data(Data::Continue)
                };
                first = false;
                let frame = Frame::message(chunk.clone(), opcode, false);
                match socket.send(Message::Frame(frame)).await {
                    Ok(()) => {
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                        tally.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => break Some(short(&e.to_string())),
                }
            };
            // Read what the server said when it closed (a close frame with its code).
            let said = tokio::time::timeout(Duration::from_millis(200), socket.next()).await;
            let what = match said {
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    format!("closed {}", u16::from(frame.code))
                }
                _ => closed.unwrap_or_else(|| "open at the end".into()),
            };
            tally.answer(what);
        }
    }

    /// Rows 3 and 8: the same costly document in a closed loop on one connection.
    async fn http_loop(&self, tally: &Tally, stop: Instant, id: u32) {
        let body = match self.kind {
            Kind::AnonAliases => json!({"query": anon_aliases_document()}),
            _ => {
                let Some(population) = self.population.as_ref() else {
                    tally.answer("no manifest: no codes to send");
                    return;
                };
                let mut rng = Rng::new(self.seed, 5000 + u64::from(id), 1);
                let codes: Vec<String> = (0..1000)
                    .map(|_| population.code(rng.below(population.operators)))
                    .collect();
                json!({"query": batch_aliases_document(), "variables": {"u": codes}})
            }
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let token = match self.kind {
            Kind::AnonAliases => None,
            _ => self.token.as_deref(),
        };
        let mut conn: Option<Connection> = None;
        while Instant::now() < stop {
            if conn.is_none() {
                match Connection::open(&self.target).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tally.answer(format!("connect: {}", short(&e.to_string())));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            tally.sent.fetch_add(1, Ordering::Relaxed);
            tally.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            match c.post(body.clone(), token).await {
                Ok(reply) => tally.answer(outcome(reply.status, &reply.body)),
                Err(e) => {
                    tally.answer(format!("transport: {}", short(&e.to_string())));
                    conn = None;
                }
            }
        }
    }

    /// Row 7: client 0 opens an authenticated socket and asks for 5,000 subscriptions
    /// (then keeps the socket); the other clients hold sockets that never initialise,
    /// reopening each one the server closes.
    async fn subscriptions(&self, tally: &Tally, stop: Instant, id: u32) {
        if id == 0 {
            self.many_subscriptions(tally, stop).await;
            return;
        }
        while Instant::now() < stop {
            let mut socket = match self.connect().await {
                Ok(s) => s,
                Err(e) => {
                    tally.answer(format!("idle: connect refused: {}", short(&e.to_string())));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            tally.sent.fetch_add(1, Ordering::Relaxed);
            // Never send connection_init; wait for the server to give up on us.
            let what = loop {
                match socket.next().await {
                    Some(Ok(Message::Close(Some(frame)))) => {
                        break format!("idle: closed {}", u16::from(frame.code));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break format!("idle: {}", short(&e.to_string())),
                    None => break "idle: closed without a code".to_string(),
                }
            };
            tally.answer(what);
        }
    }

    async fn many_subscriptions(&self, tally: &Tally, stop: Instant) {
        let Some(token) = self.token.as_deref() else {
            tally.answer("no token: no subscriptions");
            return;
        };
        let mut socket = match self.connect().await {
            Ok(s) => s,
            Err(e) => {
                tally.answer(format!(
                    "subscribe: connect refused: {}",
                    short(&e.to_string())
                ));
                return;
            }
        };
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
        if socket.send(Message::text(init.to_string())).await.is_err() {
            tally.answer("subscribe: init failed");
            return;
        }
        for n in 0..5000u32 {
            let subscribe = json!({
                "id": format!("s{n}"),
                "type": "subscribe",
                "payload": {"query": "subscription AbuseSub { registryChanged { kind } }"},
            });
            if socket
                .send(Message::text(subscribe.to_string()))
                .await
                .is_err()
            {
                tally.answer("subscribe: socket closed by the server");
                return;
            }
            tally.sent.fetch_add(1, Ordering::Relaxed);
        }
        // Read answers until the end: each refused subscription is an `error` message.
        while Instant::now() < stop {
            match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: serde_json::Value =
                        serde_json::from_str(text.as_str()).unwrap_or_default();
                    let kind = value["type"].as_str().unwrap_or("?");
                    let code = value["payload"][0]["extensions"]["code"].as_str();
                    tally.answer(match code {
                        Some(code) => format!("subscribe: {kind} {code}"),
                        None => format!("subscribe: {kind}"),
                    });
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    tally.answer(format!("subscribe: closed {code}"));
                    return;
                }
                Ok(Some(Ok(_))) | Err(_) => continue,
                Ok(Some(Err(e))) => {
                    tally.answer(format!("subscribe: {}", short(&e.to_string())));
                    return;
                }
                Ok(None) => return,
            }
        }
    }
}

fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_have_thirty_aliases() {
        assert_eq!(
            anon_aliases_document().matches("publicListings(").count(),
            30
        );
        assert_eq!(batch_aliases_document().matches("checkBatch(").count(), 30);
    }

    #[test]
    fn outcomes_name_the_code() {
        let body = br#"{"errors":[{"message":"x","extensions":{"code":"COST_LIMIT_EXCEEDED"}}]}"#;
        assert_eq!(outcome(200, body), "200 COST_LIMIT_EXCEEDED");
        assert_eq!(outcome(429, b"not json"), "429");
    }
}
