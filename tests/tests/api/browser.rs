//! The public pages and GraphiQL in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver by fantoccini): search finds a listing, its
//! page shows the measures, /verify tells a real receipt from a tampered one, GraphiQL
//! (offline assets) renders, runs a query, and runs a subscription over `/graphql/ws`
//! with the token from its header editor. Screenshots of `/` and `/listings/{id}` at
//! desktop (1280×900) and phone (390×844) sizes go to `target/screenshots/`.
//! Skipped, with a message, only when chromedriver is not installed.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tests::{Backend, TestApp, spawn_app, valid_code};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free port. The port is picked here and bound by chromedriver a
/// moment later, so another test's server may take it in between: a driver that exits
/// (its port taken) is started again on another port, and a driver counts as started
/// only once it is the one answering WebDriver's `/status` on that port.
async fn start_driver() -> Driver {
    let client = reqwest::Client::new();
    for _attempt in 0..5 {
        let port = tests::pg::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if driver.child.try_wait().ok().flatten().is_some() {
                break;
            }
            let status = client.get(format!("{}/status", driver.url)).send().await;
            if let Ok(resp) = status
                && let Ok(body) = resp.json::<serde_json::Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("chromedriver did not start (five ports tried)");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=zh-CN"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots of the current page at desktop and phone sizes.
async fn screenshots(client: &Client, name: &str) {
    for (size, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        client.set_window_size(w, h).await.unwrap();
        let png = client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name} {size}");
        std::fs::write(screenshot_dir().join(format!("{name}-{size}.png")), png).unwrap();
    }
    client.set_window_size(1280, 900).await.unwrap();
}

async fn wait_text(client: &Client, locator: Locator<'_>) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(locator)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn listed(app: &TestApp) -> (String, i64) {
    let code = valid_code("441802", 81);
    app.create_operator(&code, "清远市示例食品有限公司").await;
    let id = app
        .insert_listing_in_force(&code, &["PROCUREMENT_RESTRICT"])
        .await;
    (code, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_and_graphiql_in_chromium() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED browser tests: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver fonts-noto-cjk)"
        );
        return;
    }
    let app = spawn_app(Backend::Sqlite).await;
    let (code, id) = listed(&app).await;
    let other = valid_code("441802", 82);
    app.create_operator(&other, "另一家有限公司").await;
    let driver = start_driver().await;
    let client = browser(&driver).await;

    // Search on / finds the listing, by keyboard: type, then Enter.
    client.goto(&format!("{}/", app.address)).await.unwrap();
    screenshots(&client, "index").await;
    let search = client.find(Locator::Id("q")).await.unwrap();
    search.send_keys(&format!("{code}\u{E007}")).await.unwrap();
    let link = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!("a[href='/listings/{id}']")))
        .await
        .unwrap();
    assert_eq!(link.text().await.unwrap(), "清远市示例食品有限公司");
    assert!(client.current_url().await.unwrap().as_str().contains("q="));

    // The detail page shows the measures.
    link.click().await.unwrap();
    let measures = wait_text(&client, Locator::Id("measures")).await;
    assert!(measures.contains("PROCUREMENT_RESTRICT"), "{measures}");
    screenshots(&client, "listing").await;

    // /verify accepts a real receipt and rejects a tampered one.
    let (_, receipt) = crate::receipts::restricted_receipt(&app).await;
    let mut tampered: Vec<String> = receipt.split('.').map(str::to_string).collect();
    let flipped = if tampered[1].ends_with('A') { 'B' } else { 'A' };
    tampered[1].pop();
    tampered[1].push(flipped);
    for (text, expected) in [(receipt, "回执真实有效"), (tampered.join("."), "回执无效")]
    {
        client
            .goto(&format!("{}/verify", app.address))
            .await
            .unwrap();
        let area = client.find(Locator::Id("receipt")).await.unwrap();
        area.send_keys(&text).await.unwrap();
        client
            .find(Locator::Css("form[action='/verify'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let verdict = wait_text(&client, Locator::Id("verdict")).await;
        assert!(verdict.contains(expected), "{verdict}");
    }

    // GraphiQL renders from the registry's own assets and runs its default query.
    client
        .goto(&format!("{}/graphql", app.address))
        .await
        .unwrap();
    let run = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("GraphiQL renders");
    run.click().await.unwrap();
    let mut result = String::new();
    for _ in 0..100 {
        result = client
            .find(Locator::Css(".result-window"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if result.contains("QueryRoot") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(result.contains("QueryRoot"), "{result}");
    assert!(result.contains(&code), "{result}");

    // GraphiQL runs a subscription over /graphql/ws, with the token typed in its header
    // editor sent as the connection_init payload: a listing decided after it started
    // arrives in the result pane.
    let admin = app.admin();
    let editors: serde_json::Value = client
        .execute(
            "const query = document.querySelector('.graphiql-query-editor .CodeMirror');
             const tools = document.querySelectorAll('.graphiql-editor-tool .graphiql-editor .CodeMirror');
             if (!query || tools.length < 2) { return [!!query, tools.length]; }
             query.CodeMirror.setValue(arguments[0]);
             tools[1].CodeMirror.setValue(arguments[1]);
             return [true, tools.length];",
            vec![
                json!("subscription InBrowser { registryChanged { kind uscc } }"),
                json!(format!("{{\"Authorization\": \"Bearer {admin}\"}}")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(editors[0], true, "GraphiQL's editors: {editors}");
    // GraphiQL re-parses the edited document after a short debounce, and only a parsed
    // subscription goes to the socket (before that it POSTs the text, which the registry
    // refuses: subscriptions only over WebSocket): give it the time a person typing
    // would, longer on a loaded machine.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        client
            .find(Locator::Css(".graphiql-execute-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let shown = client
            .find(Locator::Css(".result-window"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !shown.contains("not supported on this transport") {
            break;
        }
    }
    let date = api::domain::china_date(chrono::Utc::now()).to_string();
    let mut pushed = String::new();
    let mut decided = Vec::new();
    for attempt in 0..10u32 {
        // The socket opens in the background: decide listings until one arrives.
        let code = valid_code("441802", 90 + attempt);
        app.create_operator(&code, "订阅测试有限公司").await;
        let proposed = crate::listings::propose(&app, &admin, &code, &date).await;
        let id = proposed.data()["proposeListing"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        crate::listings::decide(&app, &admin, &id, 1, &date, None)
            .await
            .data();
        decided.push(code);
        tokio::time::sleep(Duration::from_millis(500)).await;
        pushed = client
            .find(Locator::Css(".result-window"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if decided.iter().any(|c| pushed.contains(c.as_str())) {
            break;
        }
    }
    assert!(
        pushed.contains("registryChanged") && decided.iter().any(|c| pushed.contains(c.as_str())),
        "no pushed change in GraphiQL's result pane: {pushed}"
    );

    let resources: serde_json::Value = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    for name in resources.as_array().unwrap() {
        let name = name.as_str().unwrap();
        assert!(name.starts_with(&app.address), "external resource {name}");
    }
    client.close().await.unwrap();
}
