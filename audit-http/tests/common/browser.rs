//! A real browser for the viewer's tests: Debian's `chromium`, driven over WebDriver by
//! `chromedriver` (started here on a free port) through fantoccini, headless, with a fresh
//! profile. `AUDIT_TEST_CHROMIUM` and `AUDIT_TEST_CHROMEDRIVER` override the binaries.
//!
//! In CI (`CI` set) a missing browser fails the test; elsewhere the test says why it skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The window of every session (the wide layout).
pub(crate) const WIDE: (u32, u32) = (1400, 1000);
/// The narrow layout's width.
pub(crate) const NARROW: u32 = 400;

/// A headless Chromium under a chromedriver this harness started.
pub(crate) struct Browser {
    pub client: Client,
    driver: Child,
    driver_port: u16,
    profile: PathBuf,
}

/// What to start.
#[derive(Clone, Copy, Default)]
pub(crate) struct Options {
    /// Turn JavaScript off (the page must work without it).
    pub no_script: bool,
}

fn binary(var: &str, default: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing (install Debian's `chromium` and `chromium-driver`, or set {var})",
            path.display()
        ))
    }
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// A browser, or `None` (with the reason printed) when Chromium or its driver is missing
    /// outside CI.
    pub(crate) async fn start(options: Options) -> Option<Browser> {
        let found = binary("AUDIT_TEST_CHROMIUM", "/usr/bin/chromium").and_then(|c| {
            Ok((
                c,
                binary("AUDIT_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")?,
            ))
        });
        let (chromium, chromedriver) = match found {
            Ok(found) => found,
            Err(why) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must run the browser tests: {why}"
                );
                // Straight to stderr, past the test harness's capture, as the Postgres
                // fixture says why it skips.
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "note: skipping a browser test: {why}");
                return None;
            }
        };
        Some(Browser::launch(&chromium, &chromedriver, options).await)
    }

    async fn launch(chromium: &Path, chromedriver: &Path, options: Options) -> Browser {
        let port = free_port();
        let profile = std::env::temp_dir().join(format!(
            "audit-viewer-chromium-{}-{port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={},{}", WIDE.0, WIDE.1),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.push("--lang=en-GB".to_owned());
        let mut chrome_options = json!({
            "binary": chromium,
            "args": args,
        });
        if options.no_script {
            chrome_options["prefs"] =
                json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), chrome_options);
        capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&webdriver)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver on port {port} did not start a browser: {e}"),
            }
        };
        let mut browser = Browser {
            client,
            driver,
            driver_port: port,
            profile,
        };
        browser.resize(WIDE.0, WIDE.1).await;
        browser
    }

    /// Sets the viewport to `width` × `height` CSS pixels. Headless windows have a minimum
    /// width, so the size is emulated, as a phone's would be.
    pub(crate) async fn resize(&mut self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    }

    /// Runs a Chrome DevTools command through chromedriver.
    pub(crate) async fn cdp(&self, command: &str, params: Value) -> Value {
        self.driver_command(
            "goog/cdp/execute",
            json!({"cmd": command, "params": params}),
        )
        .await
    }

    /// The browser console's messages since the last call (CSP violations land here).
    pub(crate) async fn console(&self) -> Vec<String> {
        let logs = self
            .driver_command("se/log", json!({"type": "browser"}))
            .await;
        logs.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| e["message"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// POSTs a vendor command of this session to the driver.
    async fn driver_command(&self, path: &str, body: Value) -> Value {
        let session = self.client.session_id().await.unwrap().unwrap();
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.driver_port))
            .await
            .unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::post(format!("/session/{session}/{path}"))
            .header("host", format!("127.0.0.1:{}", self.driver_port))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let reply: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            reply["value"].get("error").is_none(),
            "driver command {path} failed: {reply}"
        );
        reply["value"].clone()
    }

    /// Signs in through the viewer's token form at `base` (`http://host:port`) and waits for
    /// the log.
    pub(crate) async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/audit")).await;
        let field = self.find("input[name=token][type=password]").await;
        field.send_keys(token).await.unwrap();
        self.find(".signin button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        self.find("#q").await;
    }

    /// Runs `script` in the page and returns its value.
    pub(crate) async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element `css` selects (waiting up to 10 s for it).
    pub(crate) async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?}: {e}"))
    }

    /// Every element `css` selects now.
    pub(crate) async fn find_all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// The visible text of the element `css` selects.
    pub(crate) async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits (up to `wait`) until `script` returns `true`; panics with `what` otherwise.
    pub(crate) async fn wait_until(&self, script: &str, wait: Duration, what: &str) {
        let deadline = Instant::now() + wait;
        loop {
            if self.eval(script).await == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current URL.
    pub(crate) async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub(crate) async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.unwrap()
    }

    /// Closes the session (and the browser) and stops the driver.
    pub(crate) async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    /// A test that panicked never reached `close`: stop the driver this harness started.
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }
}
