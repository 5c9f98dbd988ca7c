//! A real browser for the tests: headless Chromium driven through chromedriver's W3C WebDriver
//! interface, spoken over plain HTTP/1.1 on the loopback interface.
//!
//! Why not a WebDriver crate: the ones on crates.io are asynchronous (tokio, hyper) and bring a
//! client stack the tests would compile for a dozen requests; WebDriver is JSON over HTTP, and a
//! request here is one short-lived connection to a local process, so `std::net` suffices.
//!
//! The binaries are Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`); `HM_TEST_CHROMIUM` and `HM_TEST_CHROMEDRIVER` point elsewhere. A
//! test that uses this module is registered with `Needs::Browser`, so a machine without them
//! counts it as skipped (and `CI=true` makes it fail).

// A toolbox: each page test uses the part it needs, and a method waiting for its first user is not
// dead code.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's binary, as the tests use it.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("HM_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// chromedriver's binary, as the tests use it.
pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("HM_TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"))
}

/// Why no browser can be started here, or `None` when both binaries are present.
pub fn probe() -> Option<String> {
    let missing: Vec<String> = [chromium_path(), chromedriver_path()]
        .into_iter()
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "no headless browser ({} missing; apt-get install chromium chromium-driver, or set \
             HM_TEST_CHROMIUM and HM_TEST_CHROMEDRIVER)",
            missing.join(", ")
        )
    })
}

/// A reference to an element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

/// One headless Chromium session; dropping it ends the session and stops chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session with a
    /// 1280×1024 window.
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver_path().display()));
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, status)) = browser.http("GET", "/status", None) {
                if status["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready in 20 s"
            );
            sleep(Duration::from_millis(50));
        }
        let profile =
            std::env::temp_dir().join(format!("hm-chromium-{}-{port}", std::process::id()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium_path(),
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--window-size=1280,1024",
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    },
                },
            },
        });
        let value = browser.command("POST", "/session", Some(capabilities));
        browser.session = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {value}"))
            .to_owned();
        browser
    }

    /// Opens `url` and waits until the page has loaded.
    pub fn goto(&self, url: &str) {
        self.session_command("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current page's URL.
    pub fn url(&self) -> String {
        string(self.session_command("GET", "/url", None))
    }

    /// The current page's title.
    pub fn title(&self) -> String {
        string(self.session_command("GET", "/title", None))
    }

    /// The first element matching the CSS `selector`; fails the test when there is none.
    pub fn find(&self, selector: &str) -> Element {
        self.try_find(selector)
            .unwrap_or_else(|| panic!("no element matches {selector:?} on {}", self.url()))
    }

    /// The first element matching the CSS `selector`, if any.
    pub fn try_find(&self, selector: &str) -> Option<Element> {
        self.find_all(selector).into_iter().next()
    }

    /// Every element matching the CSS `selector`, in document order.
    pub fn find_all(&self, selector: &str) -> Vec<Element> {
        let value = self.session_command(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": selector })),
        );
        value
            .as_array()
            .map(|items| items.iter().map(element).collect())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for an element matching `selector`.
    pub fn wait_for(&self, selector: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.try_find(selector) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no element matched {selector:?} within {timeout:?} on {}",
                self.url()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` until `script` (a JavaScript function body) returns `true`.
    pub fn wait_until(&self, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.execute(script, json!([])) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "{script:?} did not hold within {timeout:?}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// The element's rendered text, as a person sees it (hidden text excluded).
    pub fn text(&self, element: &Element) -> String {
        string(self.element_command("GET", element, "/text", None))
    }

    /// The element's attribute `name`, if set.
    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.element_command("GET", element, &format!("/attribute/{name}"), None)
            .as_str()
            .map(str::to_owned)
    }

    /// The computed CSS property `name` of the element (`background-color`, say).
    pub fn css(&self, element: &Element, name: &str) -> String {
        string(self.element_command("GET", element, &format!("/css/{name}"), None))
    }

    /// Whether the element is displayed.
    pub fn is_displayed(&self, element: &Element) -> bool {
        self.element_command("GET", element, "/displayed", None) == json!(true)
    }

    /// Clicks the element.
    pub fn click(&self, element: &Element) {
        self.element_command("POST", element, "/click", Some(json!({})));
    }

    /// Clears a text field.
    pub fn clear(&self, element: &Element) {
        self.element_command("POST", element, "/clear", Some(json!({})));
    }

    /// Types `text` into the element; for an `<input type=file>`, `text` is a file's path.
    pub fn send_keys(&self, element: &Element, text: &str) {
        self.element_command("POST", element, "/value", Some(json!({ "text": text })));
    }

    /// Runs `script` (a JavaScript function body; `arguments` holds `args`) and returns its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Accepts the open `confirm()` or `alert()` dialog, returning its text.
    pub fn accept_alert(&self) -> String {
        let text = string(self.session_command("GET", "/alert/text", None));
        self.session_command("POST", "/alert/accept", Some(json!({})));
        text
    }

    /// Sets a cookie on the current page's domain.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.session_command(
            "POST",
            "/cookie",
            Some(json!({ "cookie": { "name": name, "value": value } })),
        );
    }

    /// A PNG screenshot of the window.
    pub fn screenshot_png(&self) -> Vec<u8> {
        let encoded = string(self.session_command("GET", "/screenshot", None));
        decode_base64(&encoded)
    }

    /// The page printed to PDF by Chromium (A4, backgrounds on), as a print dialog would.
    pub fn print_pdf(&self) -> Vec<u8> {
        let encoded = string(self.session_command(
            "POST",
            "/print",
            Some(json!({ "background": true, "page": { "width": 21.0, "height": 29.7 } })),
        ));
        decode_base64(&encoded)
    }

    fn element_command(
        &self,
        method: &str,
        element: &Element,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        self.session_command(method, &format!("/element/{}{path}", element.0), body)
    }

    fn session_command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.command(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Sends one WebDriver command and returns its `value`, failing the test on an error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.http(method, path, body) {
            Ok((200, mut reply)) => reply["value"].take(),
            Ok((status, reply)) => panic!("WebDriver {method} {path}: HTTP {status}: {reply}"),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    /// One HTTP/1.1 exchange with chromedriver on a connection of its own.
    fn http(&self, method: &str, path: &str, body: Option<Value>) -> std::io::Result<(u16, Value)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json; \
             charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // chromedriver may keep the connection open despite `Connection: close`, so the body is
        // read by its length (or its chunks), not to the end of the stream.
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        let split = loop {
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other(
                    "connection closed before the headers ended",
                ));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let mut payload = raw[split + 4..].to_vec();
        let length = head.lines().find_map(|line| {
            line.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        let chunked = head.contains("transfer-encoding: chunked");
        loop {
            let complete = match length {
                Some(length) => payload.len() >= length,
                None if chunked => payload.windows(5).any(|w| w == b"0\r\n\r\n"),
                None => false,
            };
            if complete {
                break;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            payload.extend_from_slice(&buf[..n]);
        }
        if chunked {
            payload = dechunk(&payload);
        }
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        Ok((status, value))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn element(value: &Value) -> Element {
    Element(
        value[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {value}"))
            .to_owned(),
    )
}

fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => panic!("expected a string from WebDriver, got {other}"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// Standard base64 (WebDriver's screenshots and PDFs), padding optional.
pub fn decode_base64(text: &str) -> Vec<u8> {
    fn digit(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let digits: Vec<u32> = text.bytes().filter_map(digit).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            n |= d << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
