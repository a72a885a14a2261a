//! A minimal HTTP/1.1 client over one kept-alive loopback connection: a load generator
//! must know exactly how many connections it holds, and spend little CPU per request.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Where the GraphQL endpoint is: a loopback address and a path.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    /// Parses `http://127.0.0.1:PORT/graphql`; anything but a loopback address is refused.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported: {url}"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/graphql"),
        };
        let host = host.replace("localhost", "127.0.0.1");
        let addr: SocketAddr = host
            .parse()
            .map_err(|_| anyhow::anyhow!("expected 127.0.0.1:PORT in {url}"))?;
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "the load generator only talks to loopback addresses, not {addr}"
        );
        Ok(Self {
            addr,
            host,
            path: path.to_string(),
        })
    }
}

pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    target: Target,
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    /// HTTP 200 and no top-level GraphQL `errors` key. The body is parsed only when the
    /// word appears at all (a field may be named `errors`, as in the introspected schema).
    pub fn ok(&self) -> bool {
        self.status == 200
            && (!contains(&self.body, b"\"errors\"") || self.json().get("errors").is_none())
    }

    /// The first GraphQL error carries `extensions.details.reason == reason` (the stable
    /// refusal reason, e.g. `SEARCH_TOO_SHORT` under code `BAD_USER_INPUT`).
    pub fn has_reason(&self, reason: &str) -> bool {
        self.json()["errors"][0]["extensions"]["details"]["reason"].as_str() == Some(reason)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let cut: String = text.chars().take(300).collect();
        format!("HTTP {}: {cut}", self.status)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Connection {
    pub async fn open(target: &Target) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            target: target.clone(),
        })
    }

    /// POSTs a JSON body with an optional bearer token and reads the whole answer.
    pub async fn post(&mut self, body: Bytes, token: Option<&str>) -> anyhow::Result<Reply> {
        self.sender.ready().await?;
        let mut req = Request::post(self.target.path.as_str())
            .header(header::HOST, self.target.host.as_str())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let resp = self.sender.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }
}

/// GETs `path` of the target's server on a fresh connection (its `/metrics`).
pub async fn get(target: &Target, path: &str) -> anyhow::Result<Reply> {
    let mut conn = Connection::open(target).await?;
    conn.sender.ready().await?;
    let req = Request::get(path)
        .header(header::HOST, target.host.as_str())
        .body(Full::new(Bytes::new()))?;
    let resp = conn.sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Reply { status, body })
}

/// One GraphQL request on a fresh connection (set-up steps, not measured).
pub async fn graphql(
    target: &Target,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Reply> {
    let mut conn = Connection::open(target).await?;
    let body = serde_json::to_vec(&serde_json::json!({ "query": query, "variables": variables }))?;
    conn.post(Bytes::from(body), token).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        let t = Target::parse("http://127.0.0.1:8080/graphql").unwrap();
        assert_eq!(t.path, "/graphql");
        assert_eq!(t.addr.port(), 8080);
        assert!(Target::parse("http://10.0.0.1:8080/graphql").is_err());
        assert!(Target::parse("https://127.0.0.1:8080/graphql").is_err());
        assert_eq!(
            Target::parse("http://localhost:9/graphql")
                .unwrap()
                .addr
                .port(),
            9
        );
    }

    #[test]
    fn graphql_errors_are_failures() {
        let ok = Reply {
            status: 200,
            body: Bytes::from_static(br#"{"data":{"x":1}}"#),
        };
        let bad = Reply {
            status: 200,
            body: Bytes::from_static(br#"{"data":null,"errors":[{"message":"no"}]}"#),
        };
        let field_named_errors = Reply {
            status: 200,
            body: Bytes::from_static(br#"{"data":{"type":{"fields":[{"name":"errors"}]}}}"#),
        };
        assert!(ok.ok());
        assert!(!bad.ok());
        assert!(field_named_errors.ok());
    }
}
