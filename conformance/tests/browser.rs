//! The demo page in a real browser: Chromium's `EventSource`, driven through
//! chromedriver (WebDriver) with fantoccini, against the demo apps run as
//! their own processes on loopback (the test publishes over `POST /publish`
//! and reads counts from `GET /health`).
//!
//! Needs `chromium` and `chromedriver` on `PATH` (`.ci/run` installs them);
//! without them every test here fails and says so. Each test starts its own
//! chromedriver on a free loopback port and a headless Chromium with a fresh
//! profile; the tests take turns so that timing checks are not skewed by
//! other browsers starting.
//!
//! Every wait is bounded in time and in number of polls. The only timing
//! assertion is the one about the `retry:` hint, with wide bounds.

// The HTTP test support of the root package's tests (the demo apps run as child
// processes): one copy serves both packages.
#[path = "../../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{Value, json};
use support::demo::{Demo, DemoApp};

/// Longest a single WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest the browser may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(10);
/// Pause between two polls of the page.
const POLL: Duration = Duration::from_millis(10);

/// One browser at a time (see the module docs).
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---- The browser ---------------------------------------------------------------------------------

/// `fut`, or a panic naming `what` after `limit`.
async fn within<F: Future>(what: &str, limit: Duration, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// The first of `names` found on `PATH` or among `extra` paths.
fn find_program(names: &[&str], extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .chain(extra.iter().map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// A free port on loopback (bound, then released for the program that needs it).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A chromedriver process, a WebDriver session of a headless Chromium, and the
/// temporary directory holding the browser's profile and the driver's log.
struct Browser {
    client: Option<Client>,
    driver: Child,
    dir: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a session; panics, saying why, when either fails.
    async fn start() -> Self {
        static SESSIONS: AtomicUsize = AtomicUsize::new(0);
        let chromedriver = find_program(&["chromedriver"], &["/usr/lib/chromium/chromedriver"]).expect(
            "chromedriver not found on PATH: the browser tests need it (Debian: apt-get install chromium-driver; .ci/run installs it)",
        );
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"], &[]).expect(
            "chromium not found on PATH: the browser tests need it (Debian: apt-get install chromium; .ci/run installs it)",
        );
        let session = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ssekit-browser-{}-{session}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).expect("create the browser's profile directory");
        let log = dir.join("chromedriver.log");

        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromedriver.display()));
        let mut browser = Self { client: None, driver, dir };

        // Ready when it accepts connections: at most 200 tries, 50 ms apart.
        let driver_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut ready = false;
        for _ in 0..200 {
            if let Some(status) = browser.driver.try_wait().expect("chromedriver status") {
                panic!("chromedriver exited at start ({status}); its log:\n{}", browser.log());
            }
            if tokio::net::TcpStream::connect(driver_addr).await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver does not listen on {driver_addr} after 10 s; its log:\n{}", browser.log());

        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1000,800",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_owned(), json!({ "binary": chromium, "args": args }));
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities);
        let url = format!("http://{driver_addr}");
        let connecting = builder.connect(&url);
        match tokio::time::timeout(Duration::from_secs(60), connecting).await {
            Ok(Ok(client)) => browser.client = Some(client),
            Ok(Err(err)) => panic!("chromedriver cannot start chromium ({err}); its log:\n{}", browser.log()),
            Err(_) => panic!("chromium did not start within 60 s; chromedriver's log:\n{}", browser.log()),
        }
        browser
    }

    /// The end of chromedriver's log, for failure messages.
    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Ends the session (chromedriver then quits Chromium); [`Drop`] does the rest.
    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(COMMAND_TIMEOUT, client.close()).await;
        }
    }

    /// Runs `script` in the page and returns its result (a returned promise is awaited).
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        within(script, COMMAND_TIMEOUT, self.client().execute(script, args))
            .await
            .unwrap_or_else(|err| panic!("script failed ({err}): {script}"))
    }

    /// Polls `script` until `done` holds for its result, for at most `WAIT`
    /// (and at most `WAIT / POLL` polls); returns that result.
    async fn wait_js(&self, what: &str, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut last = Value::Null;
        for _ in 0..WAIT.as_millis() / POLL.as_millis() {
            last = self.js(script, vec![]).await;
            if done(&last) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        assert!(done(&last), "timed out waiting for {what}; the page has {}", abbreviate(&last));
        last
    }

    /// `window.ssekit`: `{events: [{id, data, type}], resets: [{id, data}], opens, state}`.
    async fn page(&self) -> Value {
        self.js("return window.ssekit;", vec![]).await
    }

    /// Waits until the page holds `count` events; returns `window.ssekit`.
    async fn wait_events(&self, count: usize) -> Value {
        let what = format!("{count} events");
        self.wait_js(&what, "return window.ssekit;", |page| page["events"].as_array().is_some_and(|e| e.len() >= count))
            .await
    }

    /// Loads the page of `demo` and waits until its `EventSource` is open and
    /// subscribed (to `main`: the only stream the demo serves).
    async fn open(&self, demo: &Demo) {
        let url = format!("http://{}/", demo.addr);
        within("load the page", COMMAND_TIMEOUT, self.client().goto(&url)).await.expect("load the page");
        self.wait_js("the page to connect", "return window.ssekit;", |page| page["state"] == "open").await;
        demo.wait_subscribers(1).await;
    }

    /// Publishes `data` the way the page's own form does, with `fetch`; returns the id.
    async fn fetch_publish(&self, data: &str) -> String {
        let script = "return fetch('/publish', { method: 'POST', headers: { 'content-type': 'application/json' }, \
                      body: JSON.stringify({ data: arguments[0] }) }).then((r) => r.json());";
        let reply = self.js(script, vec![json!(data)]).await;
        reply["id"].as_str().unwrap_or_else(|| panic!("publish answered {reply}")).to_owned()
    }

    /// Saves a screenshot of the page as `target/browser/<name>.png`.
    async fn screenshot(&self, name: &str) {
        let png = within("screenshot", COMMAND_TIMEOUT, self.client().screenshot()).await.expect("screenshot");
        // The workspace's target directory (this package is one folder below it).
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
        let dir = target.join("browser");
        std::fs::create_dir_all(&dir).expect("create target/browser");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Should Chromium have outlived its driver (a test that panicked before
        // the session ended), its profile lock names its process.
        if let Ok(lock) = std::fs::read_link(self.dir.join("profile/SingletonLock")) {
            let pid = lock.to_string_lossy().rsplit('-').next().unwrap_or_default().to_owned();
            if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                let _ = Command::new("kill").arg("-9").arg(&pid).stderr(Stdio::null()).status();
            }
        }
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `scenario` with a fresh browser, one browser at a time, and closes the
/// browser whether the scenario passes or panics.
async fn with_browser(scenario: impl AsyncFnOnce(&Browser)) {
    let _turn = ONE_BROWSER.lock().await;
    let browser = Browser::start().await;
    let outcome = AssertUnwindSafe(scenario(&browser)).catch_unwind().await;
    browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A JSON value for a failure message, cut short when long.
fn abbreviate(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(2000) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text,
    }
}

/// The `message` events of a page, as `(id, data)`.
fn messages(page: &Value) -> Vec<(String, String)> {
    page["events"]
        .as_array()
        .expect("window.ssekit.events")
        .iter()
        .filter(|event| event["type"] == "message")
        .map(|event| {
            (event["id"].as_str().unwrap_or_default().to_owned(), event["data"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

// ---- The scenarios -------------------------------------------------------------------------------

/// 200 events published over `/publish` reach the page in order with their
/// ids; each one is on the page before the next is published.
async fn events_arrive_in_order(browser: &Browser, app: DemoApp) {
    let demo = Demo::start(app, &[]);
    browser.open(&demo).await;
    for i in 0..200 {
        let data = format!("event {i}");
        let id = demo.publish("main", &data).await;
        let script = format!("return window.ssekit.events[{i}] || null;");
        let event = browser.wait_js(&data, &script, |event| !event.is_null()).await;
        assert_eq!(event, json!({ "id": id, "data": data, "type": "message" }), "{}", app.name());
    }
    let page = browser.page().await;
    assert_eq!(page["events"].as_array().map(Vec::len), Some(200));
    assert_eq!(page["resets"], json!([]));
    assert_eq!(page["opens"], 1);
    demo.shutdown().await;
}

/// The server ends every stream after 1 s (`--max-lifetime` is in whole
/// seconds) while events keep coming; the browser reconnects by itself with
/// `Last-Event-ID` and the page ends with every event exactly once, in order.
async fn reconnects_resume_without_gaps(browser: &Browser, app: DemoApp) {
    let demo = Demo::start(app, &["--retry", "200", "--max-lifetime", "1"]);
    browser.open(&demo).await;

    // 120 events, one every 50 ms: about 6 s, so about five connections, and
    // events published while the browser waits to reconnect.
    let mut expected = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    for i in 0..120 {
        ticks.tick().await;
        let data = format!("event {i}");
        expected.push((demo.publish("main", &data).await, data));
    }
    browser.wait_events(expected.len()).await;
    // Room for a late duplicate to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = browser.page().await;
    assert_eq!(page["resets"], json!([]), "{}: no reset on an exact resume", app.name());
    let got = messages(&page);
    assert_eq!(got.len(), expected.len(), "{}: every event exactly once", app.name());
    assert_eq!(got, expected, "{}: in order, with their ids", app.name());
    let opens = page["opens"].as_u64().expect("opens");
    assert!(opens >= 3, "{}: only {opens} connections in 6 s with a 1 s lifetime", app.name());
    browser.screenshot(&format!("scenario2-{}", app.name())).await;
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn axum_events_arrive_in_order() {
    with_browser(async |browser| events_arrive_in_order(browser, DemoApp::Axum).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn actix_events_arrive_in_order() {
    with_browser(async |browser| events_arrive_in_order(browser, DemoApp::Actix).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hyper_events_arrive_in_order() {
    with_browser(async |browser| events_arrive_in_order(browser, DemoApp::Hyper).await).await;
}

/// The axum demo with `--lean`: the stream through ssekit's lean front (a body
/// that ends with its connection), the page and `/publish` through axum.
#[tokio::test(flavor = "multi_thread")]
async fn lean_events_arrive_in_order() {
    with_browser(async |browser| events_arrive_in_order(browser, DemoApp::Lean).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn axum_reconnects_resume_without_gaps() {
    with_browser(async |browser| reconnects_resume_without_gaps(browser, DemoApp::Axum).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn actix_reconnects_resume_without_gaps() {
    with_browser(async |browser| reconnects_resume_without_gaps(browser, DemoApp::Actix).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hyper_reconnects_resume_without_gaps() {
    with_browser(async |browser| reconnects_resume_without_gaps(browser, DemoApp::Hyper).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lean_reconnects_resume_without_gaps() {
    with_browser(async |browser| reconnects_resume_without_gaps(browser, DemoApp::Lean).await).await;
}

/// The server restarts with a new hub (a new epoch) on the same port: on
/// reconnect the page gets the `reset` event and shows its notice, without
/// reloading, and the events published afterwards arrive.
#[tokio::test(flavor = "multi_thread")]
async fn restart_shows_the_reset_notice() {
    with_browser(async |browser| {
        let flags = ["--retry", "300"];
        let demo = Demo::start(DemoApp::Axum, &flags);
        let port = demo.addr.port();
        browser.open(&demo).await;
        let mut before = Vec::new();
        for i in 0..3 {
            before.push(demo.publish("main", &format!("before {i}")).await);
        }
        browser.wait_events(3).await;
        let notice = within("find #notice", COMMAND_TIMEOUT, browser.client().find(Locator::Id("notice")))
            .await
            .expect("#notice");
        assert!(!within("#notice displayed", COMMAND_TIMEOUT, notice.is_displayed()).await.expect("displayed"));

        demo.shutdown().await;
        // The port was just released; binding it again may take a few tries.
        let mut restarted = Err(String::new());
        for _ in 0..50 {
            restarted = Demo::try_start(DemoApp::Axum, port, &flags);
            if restarted.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let demo = restarted.unwrap_or_else(|err| panic!("cannot start the demo on port {port} again: {err}"));

        let page = browser.wait_js("the reset", "return window.ssekit;", |page| page["resets"] != json!([])).await;
        assert_eq!(page["resets"].as_array().map(Vec::len), Some(1));
        let reset: Value = serde_json::from_str(page["resets"][0]["data"].as_str().expect("reset data")).expect("JSON");
        assert_eq!(reset["reason"], "epoch");
        assert!(within("#notice displayed", COMMAND_TIMEOUT, notice.is_displayed()).await.expect("displayed"));
        let text = within("#notice text", COMMAND_TIMEOUT, notice.text()).await.expect("text");
        assert!(text.contains("epoch"), "the notice names the reason: {text:?}");

        demo.wait_subscribers(1).await;
        let mut after = Vec::new();
        for i in 0..2 {
            after.push(demo.publish("main", &format!("after {i}")).await);
        }
        let page = browser.wait_events(6).await;
        // The page was not reloaded: what came before the restart is still there.
        let types: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["message", "message", "message", "reset", "message", "message"]);
        let ids: Vec<String> = messages(&page).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [before, after].concat());
        // At least the one reconnect; one more if the browser came back before the old
        // server stopped accepting, whose closed hub answered "try later".
        assert!(page["opens"].as_u64() >= Some(2), "{}", page["opens"]);
        demo.shutdown().await;
    })
    .await;
}

/// The browser follows the `retry:` hint: with a hint of 300 ms it reconnects
/// each time the server ends the stream; with a hint of 60 s it is still away
/// 5 s after the stream ended, where its default (3 s in Chromium) would have
/// brought it back.
///
/// Nothing here asserts how fast something happens: a slow machine only delays
/// a reconnect, so it can make the second half pass, never fail.
#[tokio::test(flavor = "multi_thread")]
async fn retry_hint_is_honoured() {
    with_browser(async |browser| {
        let demo = Demo::start(DemoApp::Axum, &["--retry", "300", "--max-lifetime", "1"]);
        browser.open(&demo).await;
        // Each stream ends after 1 s, and the browser opens the next one by itself.
        let page = browser.wait_js("3 opens", "return window.ssekit;", |page| page["opens"].as_u64() >= Some(3)).await;
        assert_eq!(page["resets"], json!([]));
        demo.shutdown().await;

        let demo = Demo::start(DemoApp::Axum, &["--retry", "60000", "--max-lifetime", "1"]);
        browser.open(&demo).await;
        demo.wait_subscribers(0).await; // the stream ended
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(demo.subscribers().await, 0, "the browser came back before the 60 s hint");
        assert_eq!(browser.page().await["opens"], 1);
        demo.shutdown().await;
    })
    .await;
}

/// Awkward text through the page's publish box arrives as the spec says: CR
/// and CRLF become LF, leading spaces and Unicode survive, 64 KiB arrive whole.
#[tokio::test(flavor = "multi_thread")]
async fn awkward_text_through_the_page() {
    with_browser(async |browser| {
        let demo = Demo::start(DemoApp::Axum, &[]);
        browser.open(&demo).await;
        let mut expected = Vec::new();

        // Typed into the box and submitted with its button, as a user would.
        let typed = [
            "   three leading spaces",
            "emoji \u{1f389} \u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467} done",
            "RTL \u{5e9}\u{5dc}\u{5d5}\u{5dd} and combining e\u{301} a\u{30a} n\u{303}",
        ];
        for text in typed {
            let input =
                within("find #text", COMMAND_TIMEOUT, browser.client().find(Locator::Id("text"))).await.expect("#text");
            within("type", COMMAND_TIMEOUT, input.send_keys(text)).await.expect("type into #text");
            let button =
                within("find the button", COMMAND_TIMEOUT, browser.client().find(Locator::Css("#send button")))
                    .await
                    .expect("the publish button");
            within("submit", COMMAND_TIMEOUT, button.click()).await.expect("submit the form");
            expected.push(text.to_owned());
            let page = browser.wait_events(expected.len()).await;
            assert_eq!(messages(&page).last().map(|(_, data)| data.as_str()), Some(text));
            // The page empties the box once the server accepted the text.
            browser.wait_js("the box to empty", "return document.getElementById('text').value;", |v| v == "").await;
        }

        // A browser turns a CR typed into the box into LF, and typing 64 KiB key
        // by key takes long, so these are posted with `fetch` from the page, the
        // way the page's form posts.
        let mut big: String = (0..11_000).map(|i| format!("{i:05} ")).collect();
        big.truncate(64 * 1024);
        assert_eq!(big.len(), 64 * 1024);
        let posted = [
            "one\rtwo".to_owned(),
            "one\r\ntwo".to_owned(),
            "a\r\r\nb\n\rc\n\nd".to_owned(),
            "ends with CR\r".to_owned(),
            big,
        ];
        for text in &posted {
            let id = browser.fetch_publish(text).await;
            let spec = text.replace("\r\n", "\n").replace('\r', "\n");
            expected.push(spec.clone());
            let page = browser.wait_events(expected.len()).await;
            let last = messages(&page).pop().expect("an event");
            assert_eq!(last.0, id);
            assert!(last.1 == spec, "{:?} arrived as {:?}", abbreviate(&json!(spec)), abbreviate(&json!(last.1)));
        }

        let page = browser.page().await;
        let got: Vec<String> = messages(&page).into_iter().map(|(_, data)| data).collect();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "every text in order");
        assert_eq!(page["opens"], 1);
        demo.shutdown().await;
    })
    .await;
}

/// The progress example's page follows its job to `done` once and stays there:
/// it closes its `EventSource` on `done`, so the ended stream is not reconnected
/// and the job does not start again.
#[tokio::test(flavor = "multi_thread")]
async fn progress_page_reaches_done_once_and_stays() {
    with_browser(async |browser| {
        let example = Demo::start(DemoApp::Progress, &[]);
        let url = format!("http://{}/", example.addr);
        within("load the page", COMMAND_TIMEOUT, browser.client().goto(&url)).await.expect("load the page");
        let done = browser.wait_js("the job to be done", "return window.job;", |job| job["done"] == 1).await;
        let steps: Vec<String> = (0..=100).step_by(10).map(|percent| format!("{percent}%")).collect();
        assert_eq!(done["progress"], json!(steps), "every step once, in order");
        assert_eq!(done["opens"], 1);

        // Longer than Chromium's reconnection delay (3 s): a page that did not
        // close its EventSource would have reconnected by now.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let later = browser.js("return window.job;", vec![]).await;
        assert_eq!(later, done, "nothing after done: no reconnect, no restart");
        let state = browser.js("return document.getElementById('state').textContent;", vec![]).await;
        assert_eq!(state, json!("done: the job is finished"));
        browser.screenshot("progress-done").await;
    })
    .await;
}

/// The demo page following three topics on one `EventSource`, through a
/// connection the server cuts every second: each topic's events arrive exactly
/// once, in order, each shown with its topic; after a reload the page shows the
/// recent events again (history on joining).
#[tokio::test(flavor = "multi_thread")]
async fn three_topics_on_one_stream_survive_cuts_and_a_reload_shows_history() {
    with_browser(async |browser| {
        let demo = Demo::start(DemoApp::Axum, &["--retry", "200", "--max-lifetime", "1"]);
        let url = format!("http://{}/?topic=red&topic=green&topic=blue", demo.addr);
        within("load the page", COMMAND_TIMEOUT, browser.client().goto(&url)).await.expect("load the page");
        browser.wait_js("the page to connect", "return window.ssekit;", |page| page["state"] == "open").await;
        demo.wait_subscribers(1).await;

        // 90 events over the three topics, one every 50 ms: about 4.5 s, so
        // several connections, and events published while the page reconnects.
        let topics = ["red", "green", "blue"];
        let mut expected = Vec::new();
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        for i in 0..90 {
            ticks.tick().await;
            let topic = topics[i % 3];
            let data = format!("{topic} {i}");
            demo.publish(topic, &data).await;
            expected.push((topic.to_owned(), data));
        }
        let page = browser.wait_events(expected.len()).await;
        tokio::time::sleep(Duration::from_millis(300)).await; // room for a late duplicate
        let page_now = browser.page().await;
        assert_eq!(page_now["events"], page["events"], "nothing after the last event");
        assert_eq!(page["resets"], json!([]), "no reset on an exact resume");
        for topic in topics {
            let got: Vec<&str> = page["events"]
                .as_array()
                .expect("events")
                .iter()
                .filter(|event| event["topic"] == topic)
                .map(|event| event["data"].as_str().unwrap_or_default())
                .collect();
            let want: Vec<&str> = expected.iter().filter(|(t, _)| t == topic).map(|(_, data)| data.as_str()).collect();
            assert_eq!(got, want, "{topic}: every event once, in order, shown as of its topic");
        }
        assert!(page["opens"].as_u64().expect("opens") >= 3, "the stream was cut and restored: {}", page["opens"]);

        // A reload is a new page: it asks for the recent events of each topic.
        within("reload", COMMAND_TIMEOUT, browser.client().refresh()).await.expect("reload");
        let reloaded = browser.wait_events(3).await;
        let shown: Vec<&str> = reloaded["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["data"].as_str().unwrap_or_default())
            .collect();
        assert!(shown.contains(&"blue 89"), "the newest event is among the history shown: {shown:?}");
        browser.screenshot("three-topics-after-reload").await;
        demo.shutdown().await;
    })
    .await;
}
