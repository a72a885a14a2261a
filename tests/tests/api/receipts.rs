//! Signed receipts: genuine ones verify (online and offline), altered ones and ones
//! signed by another key do not, and rotation keeps old receipts verifying.

use super::checks::check;
use api::service::receipts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tests::{TestApp, valid_code};

const VERIFY: &str = "query($r: String!) { verifyReceipt(receipt: $r) {
  valid reason kid receiptId issuer subject uscc domain asOf checkedAt decision hitListingIds reference warnings recorded } }";

async fn verify(app: &TestApp, receipt: &str) -> Value {
    // No token: anyone holding a receipt may ask.
    let resp = app.gql(None, VERIFY, json!({ "r": receipt })).await;
    resp.data()["verifyReceipt"].clone()
}

fn header(receipt: &str) -> Value {
    let part = receipt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn jwks_text(app: &TestApp) -> String {
    let resp = app.get("/.well-known/jwks.json").await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap()
}

/// A listed operator and a partner's restricted answer for it.
pub(crate) async fn restricted_receipt(app: &TestApp) -> (Value, String) {
    let code = valid_code("441802", 50);
    app.create_operator(&code, "某公司").await;
    let listing = app
        .insert_listing_in_force(&code, &["PROCUREMENT_RESTRICT"])
        .await;
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let resp = app
        .gql(
            Some(&token),
            super::checks::CHECK,
            json!({"u": code, "d": "PROCUREMENT", "r": "CG-2026-7"}),
        )
        .await;
    let result = resp.data()["check"].clone();
    assert_eq!(result["hits"][0]["listingId"], listing.to_string());
    let receipt = result["receipt"].as_str().unwrap().to_string();
    (result, receipt)
}

async fn a_genuine_receipt_verifies_online_and_offline(app: TestApp) {
    let (result, receipt) = restricted_receipt(&app).await;
    let v = verify(&app, &receipt).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["receiptId"], result["receiptId"]);
    assert_eq!(v["uscc"], result["uscc"]);
    assert_eq!(v["domain"], "PROCUREMENT");
    assert_eq!(v["decision"], "RESTRICTED");
    assert_eq!(v["asOf"], result["asOf"]);
    assert_eq!(v["checkedAt"], result["checkedAt"]);
    assert_eq!(v["hitListingIds"], json!([result["hits"][0]["listingId"]]));
    assert_eq!(v["subject"], "gov-procurement");
    assert_eq!(v["reference"], "CG-2026-7");
    assert_eq!(v["issuer"], "credit-registry");
    assert_eq!(v["recorded"], true);

    // The header names the key, and the published JWK set has it.
    let kid = header(&receipt)["kid"].as_str().unwrap().to_string();
    assert_eq!(header(&receipt)["alg"], "EdDSA");
    assert_eq!(v["kid"], kid);
    let jwks: Value = serde_json::from_str(&jwks_text(&app).await).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["kid"], kid);
    assert!(
        key.get("d").is_none(),
        "the private part is never published"
    );

    // Offline, with nothing but the saved JWK set (what `verify-receipt` does).
    let keys = receipts::parse_jwks(&jwks_text(&app).await).unwrap();
    let offline = receipts::verify(&receipt, &keys).unwrap();
    assert_eq!(
        offline.payload.receipt_id,
        result["receiptId"].as_str().unwrap()
    );
    assert_eq!(offline.payload.hit_listing_ids.len(), 1);
}

async fn an_altered_receipt_fails(app: TestApp) {
    let (_, receipt) = restricted_receipt(&app).await;
    let parts: Vec<&str> = receipt.split('.').collect();

    // Rewrite the decision and keep the signature.
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["decision"] = json!("CLEAR");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    let v = verify(&app, &forged).await;
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("signature"), "{v}");
    assert_eq!(
        v["decision"],
        Value::Null,
        "an invalid receipt says nothing"
    );

    // Any single changed character, wherever it is.
    for position in [0, parts[0].len() + 5, receipt.len() / 2, receipt.len() - 1] {
        let mut bytes = receipt.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let v = verify(&app, &tampered).await;
        assert_eq!(v["valid"], false, "changed position {position}: {v}");
    }
    let v = verify(&app, "not a receipt").await;
    assert_eq!(v["valid"], false);
}

async fn a_receipt_signed_by_another_key_fails(app: TestApp) {
    let (_, receipt) = restricted_receipt(&app).await;
    let genuine = receipts::verify(
        &receipt,
        &receipts::parse_jwks(&jwks_text(&app).await).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = api::auth::keys::generate(&dir.path().join("other.pem")).unwrap();

    // The same content and kid, another key.
    let forged = receipts::sign(&genuine.kid, &other, &genuine.payload).unwrap();
    let v = verify(&app, &forged).await;
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("signature"), "{v}");

    // Another key under its own kid.
    let forged = receipts::sign("someone-else", &other, &genuine.payload).unwrap();
    let v = verify(&app, &forged).await;
    assert_eq!(v["valid"], false);
    assert!(
        v["reason"].as_str().unwrap().contains("someone-else"),
        "{v}"
    );
}

async fn rotated_keys_keep_old_receipts_valid(app: TestApp) {
    let (_, old_receipt) = restricted_receipt(&app).await;
    let old_jwks = jwks_text(&app).await;
    let old_kid = header(&old_receipt)["kid"].clone();

    // What `credit-registry rotate-receipt-key` does, then the running service's reload.
    let new_kid = receipts::add_key(&app.state.settings.receipt_key_dir()).unwrap();
    app.state.receipts.reload().unwrap();

    let code = valid_code("441802", 50);
    let token = app.partner_token("gov-procurement", &[]);
    let resp = check(&app, &token, &code, "PROCUREMENT", None).await;
    let new_receipt = resp.data()["check"]["receipt"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(header(&new_receipt)["kid"], new_kid);
    assert_ne!(header(&new_receipt)["kid"], old_kid);

    assert_eq!(verify(&app, &old_receipt).await["valid"], true);
    assert_eq!(verify(&app, &new_receipt).await["valid"], true);
    let jwks: Value = serde_json::from_str(&jwks_text(&app).await).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    // Offline: the new key set verifies both; a copy saved before the rotation only the old.
    let keys = receipts::parse_jwks(&jwks_text(&app).await).unwrap();
    assert!(receipts::verify(&old_receipt, &keys).is_ok());
    assert!(receipts::verify(&new_receipt, &keys).is_ok());
    let old_keys = receipts::parse_jwks(&old_jwks).unwrap();
    assert!(receipts::verify(&old_receipt, &old_keys).is_ok());
    assert!(matches!(
        receipts::verify(&new_receipt, &old_keys),
        Err(receipts::ReceiptError::UnknownKey(_))
    ));
}

/// The compact JWS receipts of before issue 17 (`receipts.format = "jws"`, for a
/// transition): they are still issued on request and keep verifying.
fn jws(settings: &mut api::config::Settings) {
    settings.receipts.format = api::config::ReceiptFormat::Jws;
}

tests::on_both_backends_with!(
    a_genuine_receipt_verifies_online_and_offline => jws,
    an_altered_receipt_fails => jws,
    a_receipt_signed_by_another_key_fails => jws,
    rotated_keys_keep_old_receipts_valid => jws,
);

/// Production does not invent receipt keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_without_a_receipt_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = api::config::Settings::default();
    settings.bind = "127.0.0.1:0".into();
    settings.data_dir = dir.path().to_path_buf();
    settings.profile = api::config::Profile::Production;
    // A token key is configured, so only the receipt key is missing.
    api::auth::keys::generate(&dir.path().join("token.pem")).unwrap();
    settings.auth.signing_key_file = Some(dir.path().join("token.pem"));
    let err = api::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    let text = format!("{err:#}");
    assert!(text.contains("receipt"), "{text}");
    assert!(text.contains("rotate-receipt-key"), "{text}");
}
