//! Bad tokens: each is refused with HTTP 401 and UNAUTHENTICATED, and none reaches a resolver.

use api::auth::tokens::Claims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tests::{TestApp, on_both_backends};

const WRITE: &str =
    "mutation { upsertOperator(input: {uscc: \"91110000101623741K\", name: \"x\"}) { id } }";

fn claims(app: &TestApp) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: "admin-city".into(),
        role: "admin".into(),
        domains: Vec::new(),
        region: None,
        jti: uuid::Uuid::new_v4().to_string(),
        iss: app.state.settings.auth.issuer.clone(),
        aud: app.state.settings.auth.audience.clone(),
        iat: now,
        nbf: Some(now),
        exp: now + 3600,
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// The service's own signing key, read from where the development profile wrote it.
fn signing_key(app: &TestApp) -> ed25519_dalek::SigningKey {
    let pem = std::fs::read_to_string(app.state.settings.signing_key_file()).unwrap();
    ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap()
}

async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let answer = app.gql(Some(token), WRITE, json!({})).await;
    assert_eq!(answer.status, 401, "{why}: {}", answer.body);
    answer.assert_error("UNAUTHENTICATED");
}

async fn bad_tokens_are_refused(app: TestApp) {
    let sign = |c: &Claims| app.tokens.sign(c).unwrap();
    // The control: a well-formed token works, so the refusals below are about the flaw.
    let good = sign(&claims(&app));
    app.gql(Some(&good), WRITE, json!({})).await.data();
    let written = app.count("audit_events").await;

    let now = chrono::Utc::now().timestamp();
    let mut c = claims(&app);
    c.exp = now - 60;
    c.iat = now - 3600;
    c.nbf = Some(now - 3600);
    assert_refused(&app, &sign(&c), "expired").await;

    let mut c = claims(&app);
    c.nbf = Some(now + 600);
    assert_refused(&app, &sign(&c), "not yet valid").await;

    let mut c = claims(&app);
    c.iss = "someone-else".into();
    assert_refused(&app, &sign(&c), "wrong issuer").await;

    let mut c = claims(&app);
    c.aud = "another-service".into();
    assert_refused(&app, &sign(&c), "wrong audience").await;

    let mut c = claims(&app);
    c.role = "superuser".into();
    assert_refused(&app, &sign(&c), "unknown role").await;

    // Missing exp, built by hand.
    let mut raw = serde_json::to_value(claims(&app)).unwrap();
    raw.as_object_mut().unwrap().remove("exp");
    let header = b64(&json!({"alg": "EdDSA", "typ": "JWT"}));
    let no_exp = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &raw,
        &EncodingKey::from_ed_pem(
            api::auth::keys::private_pem(&signing_key(&app))
                .unwrap()
                .as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_refused(&app, &no_exp, "no exp").await;

    // alg: none, with and without a signature part.
    let payload = b64(&serde_json::to_value(claims(&app)).unwrap());
    let none_header = b64(&json!({"alg": "none", "typ": "JWT"}));
    assert_refused(&app, &format!("{none_header}.{payload}."), "alg none").await;
    assert_refused(
        &app,
        &format!("{none_header}.{payload}"),
        "alg none, two parts",
    )
    .await;

    // HS/RS confusion: HS256 keyed with the public key, as PEM text and as raw bytes.
    let key = signing_key(&app);
    let public_pem = api::auth::keys::public_pem(&key).unwrap();
    for secret in [
        public_pem.as_bytes().to_vec(),
        key.verifying_key().to_bytes().to_vec(),
    ] {
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(&app),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_refused(&app, &forged, "HS256 with the public key").await;
    }

    // A bad signature: the right header and claims, someone else's bytes.
    let (signed_part, signature) = good.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 0x01;
    let tampered_sig = format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode(&sig));
    assert_refused(&app, &tampered_sig, "bad signature").await;
    // Changed claims under the original signature (a partner promoting itself).
    let mut promoted = claims(&app);
    promoted.role = "partner".into();
    let partner = sign(&promoted);
    let (_, partner_claims_and_sig) = partner.split_once('.').unwrap();
    let (_, admin_sig) = good.rsplit_once('.').unwrap();
    let (partner_claims, _) = partner_claims_and_sig.split_once('.').unwrap();
    assert_refused(
        &app,
        &format!("{header}.{partner_claims}.{admin_sig}"),
        "claims swapped under another signature",
    )
    .await;

    // Garbage headers.
    for token in [
        "garbage",
        "a.b.c",
        &format!(
            "{}.{payload}.{signature}",
            URL_SAFE_NO_PAD.encode(b"not json")
        ),
        &format!("{}.{payload}.{signature}", b64(&json!({"typ": "JWT"}))),
        &format!(
            "{}.{payload}.{signature}",
            b64(&json!({"alg": "EdDSA", "kid": "../../etc/passwd", "jku": "http://evil"}))
        ),
        "",
    ] {
        assert_refused(&app, token, &format!("garbage header {token:?}")).await;
    }
    // Not a bearer scheme at all.
    let resp = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("authorization", format!("Basic {good}"))
        .json(&json!({ "query": WRITE }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    assert_eq!(
        app.count("audit_events").await,
        written,
        "a refused token changed something"
    );
}

on_both_backends!(bad_tokens_are_refused);
