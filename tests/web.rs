//! `habitat-migrate serve`: the safety rules over plain HTTP, and the treasurer's whole walk
//! through the page in a real headless Chromium.
//!
//! Each test starts `serve` as a child process on a free port (`--port 0`) and reads the link
//! with its one-time token from its output, as a person would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

use crate::common::{self, browser::Browser};
use crate::harness::{Test, tests};

pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            a_request_without_the_token_is_refused,
            the_link_works_once,
            another_host_is_refused,
            a_cross_origin_post_is_refused,
            an_oversized_upload_is_refused_with_a_message,
            without_listen_only_loopback_is_served,
            listen_warns,
            a_second_migrate_is_refused,
            a_run_holding_the_writer_lock_is_named,
            a_workbook_is_checked_as_validate_source_checks_it,
            a_workbook_goes_with_other_files_refused,
            the_annotated_download_is_taken_back_with_the_same_problems,
            the_migrate_page_names_each_phase_while_it_runs,
            the_example_workbooks_migrate_from_the_page,
        ],
        Browser: [
            treasurer_fixes_a_bad_bundle_and_migrates_into_sqlite,
            a_workbook_in_the_browser_names_each_cell_by_sheet,
            the_page_follows_the_phases_without_reloading,
        ],
        BrowserAndPostgres: [a_migration_into_postgresql_from_the_page],
    }
}

const WAIT: Duration = Duration::from_secs(30);

fn bad_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/web/bad")
}

fn techne() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/techne")
}

/// A running `serve`, stopped (SIGTERM, so it removes its workspace) when dropped.
struct Served {
    child: Child,
    port: u16,
    /// The printed link, with its token.
    link: String,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(database_url: &str, extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr = dir.path().join("stderr.txt");
        let mut child = Command::new(env!("CARGO_BIN_EXE_habitat-migrate"))
            .env_remove("DATABASE_URL")
            .env_remove("BACKUP_DIR")
            .current_dir(dir.path())
            .args(["--database-url", database_url, "serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let link = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.find("http://") {
                        break line[at..].trim().to_string();
                    }
                }
                _ => panic!(
                    "serve printed no link; stderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                ),
            }
        };
        let port = link
            .trim_start_matches("http://")
            .split(['/', '?'])
            .next()
            .and_then(|hostport| hostport.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {link}"));
        Served {
            child,
            port,
            link,
            stderr,
            _dir: dir,
        }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The path and query of the printed link (`/?token=…`).
    fn link_path(&self) -> String {
        self.link
            .split_once(&format!(":{}", self.port))
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default()
    }

    /// Trades the link's token for the session cookie, as a browser would.
    fn session(&self) -> String {
        let r = http(self.port, "GET", &self.link_path(), &[], b"");
        assert_eq!(r.status, 303, "{}", r.head);
        let cookie = r
            .header("set-cookie")
            .unwrap_or_else(|| panic!("no cookie in {}", r.head));
        cookie.split(';').next().unwrap_or_default().to_string()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request on a connection of its own; `Host` is 127.0.0.1 unless a header says
/// otherwise.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).expect("send head");
    // A server refusing a large body may close before reading it all.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A POST of a form from the page itself.
fn post_form(s: &Served, cookie: &str, path: &str, form: &str) -> Reply {
    let origin = s.origin();
    http(
        s.port,
        "POST",
        path,
        &[
            ("Cookie", cookie),
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    )
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn a_request_without_the_token_is_refused() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &[]);
    for path in ["/", "/files", "/problems", "/signoff", "/download/members"] {
        let r = http(s.port, "GET", path, &[], b"");
        assert_eq!(r.status, 403, "{path}: {}", r.head);
        assert!(r.body.contains("no key to this page"), "{}", r.body);
    }
    let r = http(
        s.port,
        "GET",
        "/files",
        &[("Cookie", "habitat_migrate_session=guess")],
        b"",
    );
    assert_eq!(r.status, 403);
    let r = http(s.port, "GET", "/?token=0123", &[], b"");
    assert_eq!(r.status, 403);
    // With the key, the page answers.
    let cookie = s.session();
    let r = http(s.port, "GET", "/files", &[("Cookie", &cookie)], b"");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.body.contains("1. Files"));
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(
        r.header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'self'"))
    );
}

fn the_link_works_once() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &[]);
    let first = http(s.port, "GET", &s.link_path(), &[], b"");
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location").as_deref(), Some("/"));
    let cookie = first.header("set-cookie").expect("cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let again = http(s.port, "GET", &s.link_path(), &[], b"");
    assert_eq!(again.status, 403);
    assert!(again.body.contains("used already"), "{}", again.body);
}

fn another_host_is_refused() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let port = s.port.to_string();
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "127.0.0.1:1".to_string(),
    ] {
        let r = http(
            s.port,
            "GET",
            "/files",
            &[("Host", &host), ("Cookie", &cookie)],
            b"",
        );
        assert_eq!(r.status, 421, "{host}: {}", r.head);
        assert!(r.body.contains("names another host"), "{}", r.body);
    }
    let r = http(
        s.port,
        "GET",
        "/files",
        &[("Host", &format!("localhost:{port}")), ("Cookie", &cookie)],
        b"",
    );
    assert_eq!(r.status, 200);
}

fn a_cross_origin_post_is_refused() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let form = format!("dir={}", url_encode(&techne().display().to_string()));
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let mut headers = vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        let r = http(s.port, "POST", "/files/bundle", &headers, form.as_bytes());
        assert_eq!(r.status, 403, "{origin:?}: {}", r.head);
        assert!(r.body.contains("another page or site"), "{}", r.body);
    }
    // Nothing was taken in; from the page's own origin it is.
    let r = http(s.port, "GET", "/files", &[("Cookie", &cookie)], b"");
    assert!(r.body.contains("missing — required"), "{}", r.body);
    let r = post_form(&s, &cookie, "/files/bundle", &form);
    assert_eq!(r.status, 303, "{}", r.body);
    let r = http(s.port, "GET", "/files", &[("Cookie", &cookie)], b"");
    assert!(!r.body.contains("missing — required"), "{}", r.body);
    assert!(r.body.contains("members.csv"));
}

fn an_oversized_upload_is_refused_with_a_message() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &["--max-upload", "1"]);
    let cookie = s.session();
    let boundary = "hmboundary7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"members.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nemail,display_name,ens_name,role,status,joined_at\n"
    )
    .into_bytes();
    let row = b"ada@example.org,Ada,,member,active,2025-01-01\n";
    while body.len() < 2 << 20 {
        body.extend_from_slice(row);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let origin = s.origin();
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let r = http(
        s.port,
        "POST",
        "/files",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", &content_type),
        ],
        &body,
    );
    assert_eq!(r.status, 413, "{}", r.head);
    assert!(
        r.body.contains("larger than the limit of 1 MiB"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("panicked") && !r.body.contains("src/"));
}

/// A local address other than loopback, if the machine has one (the address a route to the
/// documentation network would leave from; no packet is sent).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn without_listen_only_loopback_is_served() {
    let (_db, url) = common::fresh_sqlite();
    // Asking for a non-loopback address some other way than --listen is not possible: --port
    // binds 127.0.0.1, so the machine's other address does not answer.
    let s = Served::start(&url, &[]);
    assert!(s.link.starts_with("http://127.0.0.1:"), "{}", s.link);
    assert!(!s.stderr().contains("WARNING"), "{}", s.stderr());
    if let Some(ip) = non_loopback_address() {
        let refused = TcpStream::connect_timeout(
            &std::net::SocketAddr::new(ip, s.port),
            Duration::from_secs(2),
        );
        assert!(
            refused.is_err(),
            "{ip}:{} answered without --listen",
            s.port
        );
    }
    // --listen on a loopback address is fine and quiet.
    let s = Served::start(&url, &["--listen", "127.0.0.1:0"]);
    assert!(!s.stderr().contains("WARNING"), "{}", s.stderr());
}

fn listen_warns() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &["--listen", "0.0.0.0:0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.stderr().contains("WARNING") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        s.stderr().contains("can be reached from other computers"),
        "{}",
        s.stderr()
    );
    // Still the token: another computer without it is refused like anyone.
    if let Some(ip) = non_loopback_address() {
        let mut stream = TcpStream::connect((ip, s.port)).expect("connect over the network");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let request = format!(
            "GET /files HTTP/1.1\r\nHost: {ip}:{}\r\nConnection: close\r\n\r\n",
            s.port
        );
        stream.write_all(request.as_bytes()).expect("send");
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    }
}

/// A bundle big enough that its migration takes a while in a debug build.
fn big_bundle(dir: &Path) -> PathBuf {
    let out = dir.join("big");
    common::bin()
        .args(["gen", "--members", "3000", "--out"])
        .arg(&out)
        .assert()
        .success();
    out
}

fn a_second_migrate_is_refused() {
    let (db, url) = common::fresh_sqlite();
    let bundle = big_bundle(db.path());
    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let r = post_form(
        &s,
        &cookie,
        "/files/bundle",
        &format!("dir={}", url_encode(&bundle.display().to_string())),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let first = post_form(&s, &cookie, "/migrate", "");
    assert_eq!(first.status, 303, "{}", first.body);
    // A second tab, a moment later.
    let second = post_form(&s, &cookie, "/migrate", "");
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(
        second.body.contains("already in progress"),
        "{}",
        second.body
    );
    // The first one finishes, alone, and says so.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let page = http(s.port, "GET", "/migrate", &[("Cookie", &cookie)], b"");
        if page.body.contains("id=\"outcome\"") {
            assert!(page.body.contains("run 1 committed"), "{}", page.body);
            assert!(!page.body.contains("class=\"fail\""), "{}", page.body);
            break;
        }
        assert!(page.body.contains("in progress"), "{}", page.body);
        assert!(Instant::now() < deadline, "the migration did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    let runs: i64 = common::sqlite_conn(&url)
        .query_row("SELECT count(*) FROM hm_runs WHERE dry_run = 0", [], |r| {
            r.get(0)
        })
        .expect("count runs");
    assert_eq!(runs, 1);
}

fn a_run_holding_the_writer_lock_is_named() {
    let (_db, url) = common::fresh_sqlite();
    common::bin()
        .args(["--database-url", &url, "db", "init"])
        .assert()
        .success();
    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let r = post_form(
        &s,
        &cookie,
        "/files/bundle",
        &format!("dir={}", url_encode(&techne().display().to_string())),
    );
    assert_eq!(r.status, 303);
    // Another writer (a command-line run, say) holds the database's write lock.
    let other = common::sqlite_conn(&url);
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let r = post_form(&s, &cookie, "/migrate", "");
    assert_eq!(r.status, 303);
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let page = http(s.port, "GET", "/migrate", &[("Cookie", &cookie)], b"");
        if page.body.contains("id=\"outcome\"") {
            break page;
        }
        assert!(Instant::now() < deadline, "no outcome");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.body.contains("did not complete"), "{}", page.body);
    assert!(
        page.body
            .contains("another habitat-migrate run is writing to this database"),
        "{}",
        page.body
    );
    other.execute_batch("ROLLBACK").expect("release");
}

// ---------------------------------------------------------------------------------------------
// In a real browser
// ---------------------------------------------------------------------------------------------

/// Saves a screenshot of the page as `NAME.png` into `HM_SCREENSHOTS`, when it is set
/// (`scripts/screenshots` sets it to `docs/screenshots`).
fn shot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("HM_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), browser.screenshot_png()).expect("png");
    }
}

/// The text the page would download for `stem`, fetched by the page's own script.
fn downloaded(browser: &Browser, stem: &str) -> String {
    let value = browser.execute(
        "return fetch('/download/' + arguments[0]).then(r => r.text());",
        serde_json::json!([stem]),
    );
    value.as_str().unwrap_or_default().to_string()
}

fn wait_for_text(browser: &Browser, selector: &str, text: &str) {
    let script = format!(
        "const e = document.querySelector({selector:?}); return !!e && e.textContent.includes({text:?});"
    );
    browser.wait_until(&script, WAIT);
}

fn treasurer_fixes_a_bad_bundle_and_migrates_into_sqlite() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &[]);
    let browser = Browser::start();
    browser.goto(&s.link);
    assert!(browser.url().ends_with("/files"), "{}", browser.url());
    // The token is gone from the address bar.
    assert!(!browser.url().contains("token"));

    // Files: pick three files first; the page says which required one is missing.
    let input = browser.find("#file-input");
    let path = |name: &str| bad_bundle().join(name).display().to_string();
    browser.send_keys(
        &input,
        &[
            path("members.csv"),
            path("periods.csv"),
            path("contributions.csv"),
        ]
        .join("\n"),
    );
    browser.click(&browser.find("#upload button"));
    wait_for_text(
        &browser,
        "tr[data-table=capital_accounts]",
        "missing — required",
    );
    assert!(
        browser
            .text(&browser.find("tr[data-table=members]"))
            .contains("members.csv")
    );
    let input = browser.find("#file-input");
    browser.send_keys(&input, &path("capital_accounts.csv"));
    browser.click(&browser.find("#upload button"));
    let next = browser.wait_for("#to-problems", WAIT);
    shot(&browser, "1-files");
    browser.click(&next);

    // Problems: the duplicate email is highlighted in its cell, with its hint.
    browser.goto(&format!("{}/problems?file=members", s.origin()));
    let summary = browser.text(&browser.find("#summary"));
    assert!(summary.contains("6 errors"), "{summary}");
    let bad = browser.find_all("#grid td.cell.error");
    assert_eq!(bad.len(), 1, "one bad cell in members.csv");
    let cell = browser.find("#c5-email");
    assert!(
        browser
            .attribute(&cell, "class")
            .unwrap_or_default()
            .contains("error")
    );
    assert_eq!(
        browser.css(&cell, "background-color"),
        "rgba(251, 213, 213, 1)"
    );
    browser.click(&cell);
    let panel = browser.wait_for("#cell-panel:not([hidden])", WAIT);
    let shown = browser.text(&panel);
    assert!(shown.contains("email.duplicate"), "{shown}");
    assert!(shown.contains("hint: keep one row per member"), "{shown}");
    shot(&browser, "2-problems");

    // Edit in place: the duplicate goes, and so do the references to the member it now names
    // in the other two files.
    let value = browser.find("#cell-value");
    browser.clear(&value);
    browser.send_keys(&value, "tom.lindqvist@example.org");
    browser.click(&browser.find("#cell-save"));
    browser.wait_until(
        "return !!document.querySelector('#c5-email.edited') && !document.querySelector('#grid td.cell.error');",
        WAIT,
    );
    let summary = browser.text(&browser.find("#summary"));
    assert!(summary.contains("3 errors"), "{summary}");

    // One grouped repair for the thousands separators, every change shown first.
    let group = browser.find("a.repair-group");
    assert_eq!(
        browser.text(&group),
        "3 amounts written with thousands separators"
    );
    browser.click(&group);
    let rows = browser.find_all("#repair-list tbody tr");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        browser.text(&rows[0]),
        "capital_accounts.csv 2 balance 10,000.00 10000.00"
    );
    shot(&browser, "3-repair");
    browser.click(&browser.find("#apply-repair"));
    let summary = browser.wait_for("#summary.ok", WAIT);
    assert!(browser.text(&summary).contains("No errors in 14 rows"));

    // The corrected files: the uploads, but for the edited cells.
    let original = std::fs::read_to_string(bad_bundle().join("members.csv")).expect("members");
    assert_eq!(
        downloaded(&browser, "members"),
        original.replace(
            "Maya.Okonkwo@example.org,Tom",
            "tom.lindqvist@example.org,Tom"
        )
    );
    let original =
        std::fs::read_to_string(bad_bundle().join("capital_accounts.csv")).expect("accounts");
    assert_eq!(
        downloaded(&browser, "capital_accounts"),
        original
            .replace("\"10,000.00\",\"10,000.00\"", "10000.00,10000.00")
            .replace("\"6,500.00\"", "6500.00")
    );
    let original = std::fs::read_to_string(bad_bundle().join("periods.csv")).expect("periods");
    assert_eq!(downloaded(&browser, "periods"), original);

    // Plan: the dry run's counts.
    browser.click(&browser.find("#to-plan"));
    let counts = browser.wait_for("#counts", WAIT);
    let members = browser.text(&browser.find("#counts tr[data-table=members]"));
    assert_eq!(members, "members 4 0 0", "{}", browser.text(&counts));
    shot(&browser, "4-plan");
    assert!(
        !common::sqlite_path(&url).exists(),
        "the dry run created the database file"
    );

    // Migrate: one button, a confirmation naming the database, then the checks.
    browser.click(&browser.find("#to-migrate"));
    let target = browser.text(&browser.find("#target"));
    assert!(
        target.contains(&common::sqlite_path(&url).display().to_string()),
        "{target}"
    );
    browser.click(&browser.find("#migrate"));
    let asked = browser.accept_alert();
    assert!(asked.contains("habitat.db"), "{asked}");
    let outcome = browser.wait_for("#outcome", Duration::from_secs(120));
    assert!(
        browser.text(&outcome).contains("committed"),
        "{}",
        browser.text(&outcome)
    );
    let checks = browser.find_all("#checks li");
    assert!(checks.len() >= 6, "{} checks", checks.len());
    for check in &checks {
        assert_eq!(
            browser.attribute(check, "class").as_deref(),
            Some("pass"),
            "{}",
            browser.text(check)
        );
    }
    shot(&browser, "5-migrated");

    // Sign off: the run's report and the history.
    browser.click(&browser.find("#to-signoff"));
    let report = browser.wait_for("#report", WAIT);
    assert!(browser.text(&report).contains("Run 1"));
    let history = browser.find_all("#history tr[data-run]");
    assert_eq!(history.len(), 1);
    assert!(browser.text(&history[0]).contains("succeeded"));
    shot(&browser, "6-signoff");
    // The sign-off report behind the link is the document `report` writes, with its signature block.
    let href = browser
        .execute(
            "return document.querySelector('#signoff-report').href",
            serde_json::json!([]),
        )
        .as_str()
        .expect("the report link has an href")
        .to_owned();
    let back = browser.url();
    browser.goto(&href);
    let body = browser.text(&browser.find("body"));
    assert!(body.contains("sign-off report — run 1"), "{body}");
    assert!(body.contains("Sign-off"), "{body}");
    browser.goto(&back);
    let count = || -> i64 {
        common::sqlite_conn(&url)
            .query_row("SELECT count(*) FROM members", [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(count(), 4);

    // Restore the backup taken before the run: a page that says what it does, then a second
    // confirmation naming the database.
    browser.click(&browser.find("#history a.restore"));
    let button = browser.wait_for("#restore", WAIT);
    shot(&browser, "7-restore");
    browser.click(&button);
    let asked = browser.accept_alert();
    assert!(asked.contains("before run 1"), "{asked}");
    browser.wait_for("#restored", WAIT);
    assert_eq!(
        count(),
        0,
        "the backup was taken before the members were imported"
    );
}

fn a_migration_into_postgresql_from_the_page() {
    let db = common::fresh_pg();
    // Trust authentication ignores the password; the page must never show it.
    let url = db
        .url
        .replacen("postgres://postgres@", "postgres://postgres:s3cret-pw@", 1);
    assert!(url.contains("s3cret-pw"), "{url}");
    let s = Served::start(&url, &[]);
    let browser = Browser::start();
    browser.goto(&s.link);
    let dir = browser.find("#bundle-dir");
    browser.send_keys(&dir, &techne().display().to_string());
    browser.click(&browser.find("form[action='/files/bundle'] button"));
    browser.click(&browser.wait_for("#to-problems", WAIT));
    browser.click(&browser.wait_for("#to-plan", WAIT));
    let members = browser.text(&browser.wait_for("#counts tr[data-table=members]", WAIT));
    assert_eq!(members, "members 12 0 0");
    browser.click(&browser.find("#to-migrate"));
    let target = browser.text(&browser.find("#target"));
    assert_eq!(
        target,
        format!("the PostgreSQL database {} on 127.0.0.1:5432", db.name)
    );
    browser.click(&browser.find("#migrate"));
    let asked = browser.accept_alert();
    assert!(
        asked.contains(&db.name) && !asked.contains("s3cret"),
        "{asked}"
    );
    let outcome = browser.wait_for("#outcome", Duration::from_secs(120));
    assert!(browser.text(&outcome).contains("committed"));
    for check in browser.find_all("#checks li") {
        assert_eq!(browser.attribute(&check, "class").as_deref(), Some("pass"));
    }
    let source = browser
        .execute(
            "return document.documentElement.outerHTML;",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!source.contains("s3cret-pw"));
    browser.click(&browser.find("#to-signoff"));
    let history = browser.find_all("#history tr[data-run]");
    assert_eq!(history.len(), 1);
    let mut client = common::pg_client(&db.url);
    let count: i64 = client
        .query_one("SELECT count(*) FROM members", &[])
        .expect("count")
        .get(0);
    assert_eq!(count, 12);
}

// ---------------------------------------------------------------------------------------------
// Workbooks, annotated downloads, progress
// ---------------------------------------------------------------------------------------------

/// Files sent as the page's upload form sends them.
fn upload(s: &Served, cookie: &str, files: &[(&str, &[u8])]) -> Reply {
    let boundary = "hmboundaryQ2xkTrZu0gW7MA4";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let origin = s.origin();
    let content_type = format!("multipart/form-data; boundary={boundary}");
    http(
        s.port,
        "POST",
        "/files",
        &[
            ("Cookie", cookie),
            ("Origin", &origin),
            ("Content-Type", &content_type),
        ],
        &body,
    )
}

fn get(s: &Served, cookie: &str, path: &str) -> Reply {
    http(s.port, "GET", path, &[("Cookie", cookie)], b"")
}

/// The side list of the problems page: each finding's place (`members!A5 (email)`) and the
/// link to its cell.
fn side_list(page: &str) -> Vec<(String, String)> {
    let list = page
        .split_once("<aside id=\"problem-list\">")
        .and_then(|(_, rest)| rest.split_once("</aside>"))
        .map_or("", |(list, _)| list);
    list.split("<li class=\"")
        .skip(1)
        .filter_map(|item| {
            let (_, rest) = item.split_once("<a href=\"")?;
            let (href, rest) = rest.split_once("\">")?;
            let (place, _) = rest.split_once("</a>")?;
            Some((place.to_string(), href.replace("&amp;", "&")))
        })
        .collect()
}

/// A workbook with a problem of each kind the sheet has and a CSV file has not: a duplicate
/// email on a row after an empty one, a value right of the header, an error value, a boolean,
/// a text amount with thousands separators, a cell over two lines before an unknown member.
fn bad_workbook(path: &Path) {
    let mut book = Workbook::new();
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let members = book.add_worksheet();
    members.set_name("Members").expect("name");
    for (col, name) in (0u16..).zip([
        "email",
        "display_name",
        "ens_name",
        "role",
        "status",
        "joined_at",
    ]) {
        members.write_string(0, col, name).expect("header");
    }
    let date = ExcelDateTime::from_ymd(2025, 1, 1).expect("date");
    for (row, (email, name)) in [
        (1u32, ("ana@example.org", "Ana")),
        (2, ("ben@example.org", "Ben")),
        (4, ("ANA@example.org", "Ana Again")),
    ] {
        members.write_string(row, 0, email).expect("email");
        members.write_string(row, 1, name).expect("name");
        members.write_string(row, 3, "member").expect("role");
        members.write_string(row, 4, "active").expect("status");
        members
            .write_datetime_with_format(row, 5, &date, &day)
            .expect("joined");
    }
    members.write_string(1, 7, "stray").expect("stray");
    let accounts = book.add_worksheet();
    accounts.set_name("capital accounts").expect("name");
    for (col, name) in (0u16..).zip(["member_email", "balance", "tax_basis", "notes"]) {
        accounts.write_string(0, col, name).expect("header");
    }
    accounts
        .write_string(1, 0, "ana@example.org")
        .expect("cell");
    accounts.write_number(1, 1, 1000.0).expect("cell");
    accounts.write_number(1, 2, 1000.0).expect("cell");
    accounts.write_boolean(1, 3, true).expect("cell");
    accounts
        .write_string(2, 0, "ben@example.org")
        .expect("cell");
    accounts.write_string(2, 1, "1,500.00").expect("cell");
    accounts
        .write_formula(2, 2, Formula::new("=Z99").set_result("#REF!"))
        .expect("cell");
    accounts
        .write_string(2, 3, "line one\nline two")
        .expect("cell");
    accounts
        .write_string(3, 0, "carl@example.org")
        .expect("cell");
    accounts.write_number(3, 1, 5.0).expect("cell");
    accounts.write_number(3, 2, 5.0).expect("cell");
    book.save(path).expect("save the workbook");
}

/// `validate-source --format json BOOK`: each finding (not the notes) as the page places it.
fn validate_source_places(book: &Path) -> (Vec<String>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::bin()
        .current_dir(dir.path())
        .args([
            "--database-url",
            "sqlite://none.db",
            "--format",
            "json",
            "validate-source",
        ])
        .arg(book)
        .output()
        .expect("validate-source runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let mut places: Vec<String> = report["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["severity"] != "note")
        .map(|d| {
            let sheet = d["sheet"].as_str().expect("every finding is on a sheet");
            let place = match (d["row"].as_u64(), d["column_letter"].as_str()) {
                (Some(row), Some(letter)) => format!("{sheet}!{letter}{row}"),
                (Some(row), None) => format!("{sheet}!{row}:{row}"),
                (None, _) => sheet.to_string(),
            };
            match d["column"].as_str() {
                Some(column) => format!("{place} ({column})"),
                None => place,
            }
        })
        .collect();
    places.sort();
    (
        places,
        report["summary"]["errors"].as_u64().expect("errors"),
    )
}

fn a_workbook_is_checked_as_validate_source_checks_it() {
    let (db, url) = common::fresh_sqlite();
    let book = db.path().join("coop.xlsx");
    bad_workbook(&book);
    let (expected, errors) = validate_source_places(&book);
    for place in [
        "Members!A5 (email)",
        "Members!H2",
        "capital accounts!C3 (tax_basis)",
        "capital accounts!D2 (notes)",
        "capital accounts!A4 (member_email)",
    ] {
        assert!(
            expected.iter().any(|p| p == place),
            "{place} not in {expected:?}"
        );
    }

    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let bytes = std::fs::read(&book).expect("the workbook");
    let r = upload(&s, &cookie, &[("coop.xlsx", &bytes)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let files = get(&s, &cookie, "/files");
    assert!(
        files.body.contains("sheet capital accounts of coop.xlsx"),
        "{}",
        files.body
    );
    assert!(files.body.contains("download as CSV"), "{}", files.body);
    assert!(!files.body.contains("missing — required"), "{}", files.body);

    // Every finding the command line gives, in the sheet's coordinates, and nothing else.
    let page = get(&s, &cookie, "/problems?file=capital_accounts");
    let listed = side_list(&page.body);
    let mut places: Vec<String> = listed.iter().map(|(p, _)| p.clone()).collect();
    places.sort();
    assert_eq!(places, expected);
    assert!(
        page.body.contains(&format!("{errors} errors and")),
        "{errors} errors: {}",
        page.body
    );
    // The row after the cell over two lines is still row 4 of the sheet, on line 5 of the copy.
    let (_, href) = listed
        .iter()
        .find(|(p, _)| p == "capital accounts!A4 (member_email)")
        .expect("listed");
    assert_eq!(
        href,
        "/problems?file=capital_accounts&page=1#c5-member_email"
    );
    assert!(
        page.body.contains("<tr id=\"l5\"><th>4</th>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-place=\"capital accounts!C3\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("tax_basis <span class=\"letter\">C</span>"),
        "{}",
        page.body
    );

    // Typing the value over the error value: the sheet's finding goes with it.
    let origin = s.origin();
    let r = http(
        s.port,
        "POST",
        "/api/edit",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", "application/json"),
        ],
        br#"{"file":"capital_accounts","line":3,"column":"tax_basis","value":"1500.00"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let page = get(&s, &cookie, "/problems?file=capital_accounts");
    let places: Vec<String> = side_list(&page.body).into_iter().map(|(p, _)| p).collect();
    let mut left: Vec<String> = expected
        .iter()
        .filter(|p| !p.starts_with("capital accounts!C3"))
        .cloned()
        .collect();
    left.sort();
    let mut places = places;
    places.sort();
    assert_eq!(places, left);

    // The copy downloads as CSV: the text of each cell as the reader read it, and the edit.
    let r = get(&s, &cookie, "/download/capital_accounts");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some("attachment; filename=\"capital_accounts.csv\"")
    );
    assert_eq!(
        r.body,
        "member_email,balance,tax_basis,notes\n\
         ana@example.org,1000,1000,\n\
         ben@example.org,\"1,500.00\",1500.00,\"line one\nline two\"\n\
         carl@example.org,5,5,\n"
    );
}

fn a_workbook_goes_with_other_files_refused() {
    let (db, url) = common::fresh_sqlite();
    let book = db.path().join("coop.xlsx");
    bad_workbook(&book);
    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let bytes = std::fs::read(&book).expect("the workbook");
    let members = std::fs::read(bad_bundle().join("members.csv")).expect("members");
    let r = upload(
        &s,
        &cookie,
        &[("coop.xlsx", &bytes), ("members.csv", &members)],
    );
    assert_eq!(r.status, 400, "{}", r.head);
    assert!(r.body.contains("give it alone"), "{}", r.body);
    // A workbook without the sheet of a required table: the library's words, with its name.
    let mut only = Workbook::new();
    only.add_worksheet().set_name("members").expect("name");
    let only = only.save_to_buffer().expect("a workbook");
    let r = upload(&s, &cookie, &[("partial.xlsx", &only)]);
    assert_eq!(r.status, 400, "{}", r.head);
    assert!(
        r.body
            .contains("partial.xlsx: no sheet named capital_accounts"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("/tmp"), "{}", r.body);
    // Not a workbook at all.
    let r = upload(&s, &cookie, &[("broken.xlsx", b"not a zip")]);
    assert_eq!(r.status, 400, "{}", r.head);
    assert!(
        r.body.contains("broken.xlsx: not a readable workbook"),
        "{}",
        r.body
    );
    // The same workbook by its path on this computer.
    let r = post_form(
        &s,
        &cookie,
        "/files/bundle",
        &format!("dir={}", url_encode(&book.display().to_string())),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let files = get(&s, &cookie, "/files");
    assert!(
        files.body.contains("sheet Members of coop.xlsx"),
        "{}",
        files.body
    );
}

fn the_annotated_download_is_taken_back_with_the_same_problems() {
    let (_db, url) = common::fresh_sqlite();
    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let r = post_form(
        &s,
        &cookie,
        "/files/bundle",
        &format!("dir={}", url_encode(&bad_bundle().display().to_string())),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = get(&s, &cookie, "/problems?file=members");
    assert!(
        page.body.contains("href=\"/annotated/members\""),
        "{}",
        page.body
    );
    let before: Vec<String> = side_list(&page.body)
        .into_iter()
        .map(|(place, _)| place)
        .filter(|p| p.starts_with("members.csv"))
        .collect();
    assert!(!before.is_empty());

    let r = get(&s, &cookie, "/annotated/members");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some("attachment; filename=\"members-problems.csv\"")
    );
    let copy = r.body.clone();
    assert!(
        copy.starts_with("\u{feff}_problems,_hints,email,display_name,"),
        "{copy}"
    );
    let row = copy
        .lines()
        .find(|l| l.contains("Maya.Okonkwo@example.org"))
        .expect("the duplicate's row");
    assert!(row.trim_start_matches('"').starts_with("email: "), "{row}");
    assert!(row.contains("keep one row per member"), "{row}");

    // Given back as it is: read as the members file, the two columns ignored with a note.
    let r = upload(&s, &cookie, &[("members-problems.csv", copy.as_bytes())]);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = get(&s, &cookie, "/problems?file=members");
    assert!(page.body.contains("file.annotated"), "{}", page.body);
    let after: Vec<String> = side_list(&page.body)
        .into_iter()
        .map(|(place, _)| place)
        .filter(|p| p.starts_with("members-problems.csv"))
        .collect();
    let renamed: Vec<String> = before
        .iter()
        .map(|p| p.replacen("members.csv", "members-problems.csv", 1))
        .collect();
    assert_eq!(after, renamed);
}

fn the_migrate_page_names_each_phase_while_it_runs() {
    let (db, url) = common::fresh_sqlite();
    let bundle = db.path().join("big");
    common::bin()
        .args(["gen", "--members", "20000", "--out"])
        .arg(&bundle)
        .assert()
        .success();
    let s = Served::start(&url, &[]);
    let cookie = s.session();
    let r = post_form(
        &s,
        &cookie,
        "/files/bundle",
        &format!("dir={}", url_encode(&bundle.display().to_string())),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = post_form(&s, &cookie, "/migrate", "");
    assert_eq!(r.status, 303, "{}", r.body);
    let page = get(&s, &cookie, "/migrate");
    assert!(
        page.body.contains("in progress"),
        "the run ended before the page was seen"
    );
    assert!(page.body.contains("id=\"phase\""), "{}", page.body);
    assert!(
        page.body.contains("data-poll=\"/api/progress\""),
        "{}",
        page.body
    );

    let mut seen: Vec<String> = Vec::new();
    let mut last = serde_json::Value::Null;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let r = get(&s, &cookie, "/api/progress");
        assert_eq!(r.status, 200, "{}", r.body);
        let now: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        if now["running"] != true {
            assert_eq!(now["finished"], true, "{now}");
            break;
        }
        if let Some(phase) = now["phase"].as_str() {
            if seen.last().map(String::as_str) != Some(phase) {
                seen.push(phase.to_string());
            }
            if let (Some(done), Some(total)) = (now["done"].as_u64(), now["total"].as_u64()) {
                assert!(done <= total, "{now}");
            }
        }
        // The whole list of phases so far, in order, each a name.
        for phase in now["phases"].as_array().expect("phases") {
            assert!(
                phase["name"].as_str().is_some_and(|n| !n.is_empty()),
                "{now}"
            );
        }
        last = now;
        assert!(Instant::now() < deadline, "the migration did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("phases seen over /api/progress: {seen:?}");
    let known = [
        "validating the source files",
        "writing the backup",
        "writing members",
        "writing capital_accounts",
        "writing contributions",
        "verifying",
        "reading back what was written",
    ];
    assert!(
        seen.iter().any(|p| known.contains(&p.as_str())),
        "no phase seen: {seen:?}"
    );
    // Phases come in the pipeline's order.
    let order: Vec<usize> = seen
        .iter()
        .filter_map(|p| known.iter().position(|k| k == p))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // The last look before the end: every member written, counted against the total.
    let members_written = last["phases"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "writing members"))
        .unwrap_or_else(|| panic!("no members written in {last}"));
    assert_eq!(members_written["done"], 20_000, "{last}");
    assert_eq!(members_written["total"], 20_000, "{last}");
    assert_eq!(members_written["finished"], true, "{last}");

    let page = get(&s, &cookie, "/migrate");
    assert!(page.body.contains("run 1 committed"), "{}", page.body);
    assert!(
        page.body.contains("<span class=\"mark\">✓</span>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("class=\"fail\""), "{}", page.body);
    let members: i64 = common::sqlite_conn(&url)
        .query_row("SELECT count(*) FROM members", [], |r| r.get(0))
        .expect("count");
    assert_eq!(members, 20_000);
}

fn a_workbook_in_the_browser_names_each_cell_by_sheet() {
    let (db, url) = common::fresh_sqlite();
    let book = db.path().join("coop.xlsx");
    bad_workbook(&book);
    let s = Served::start(&url, &[]);
    let browser = Browser::start();
    browser.goto(&s.link);
    let input = browser.find("#file-input");
    browser.send_keys(&input, &book.display().to_string());
    browser.click(&browser.find("#upload button"));
    wait_for_text(
        &browser,
        "tr[data-table=members]",
        "sheet Members of coop.xlsx",
    );
    shot(&browser, "8-workbook");
    browser.goto(&format!("{}/problems?file=members", s.origin()));
    // The duplicate is on row 5 of the sheet (after an empty row), line 4 of the copy.
    let cell = browser.find("#c4-email");
    assert!(
        browser
            .attribute(&cell, "class")
            .unwrap_or_default()
            .contains("error")
    );
    let row = browser.text(&browser.find("#l4 th"));
    assert_eq!(row, "5");
    let tip = browser.execute(
        "return document.querySelector('#c4-email .tip').textContent;",
        serde_json::json!([]),
    );
    let tip = tip.as_str().unwrap_or_default();
    assert!(tip.starts_with("Members!A5"), "{tip}");
    assert!(tip.contains("email.duplicate"), "{tip}");
    let list = browser.text(&browser.find("#problem-list"));
    assert!(list.contains("Members!A5 (email)"), "{list}");
    browser.click(&cell);
    let panel = browser.wait_for("#cell-panel:not([hidden])", WAIT);
    assert!(
        browser.text(&panel).contains("Members!A5"),
        "{}",
        browser.text(&panel)
    );
    // An edit on the sheet's copy is checked again at once.
    let value = browser.find("#cell-value");
    browser.clear(&value);
    browser.send_keys(&value, "ann@example.org");
    browser.click(&browser.find("#cell-save"));
    browser.wait_until(
        "return !!document.querySelector('#c4-email.edited') && !document.querySelector('#c4-email.error');",
        WAIT,
    );
    shot(&browser, "9-workbook-problems");
}

fn the_page_follows_the_phases_without_reloading() {
    let (db, url) = common::fresh_sqlite();
    let bundle = db.path().join("big");
    common::bin()
        .args(["gen", "--members", "20000", "--out"])
        .arg(&bundle)
        .assert()
        .success();
    let s = Served::start(&url, &[]);
    let browser = Browser::start();
    browser.goto(&s.link);
    let dir = browser.find("#bundle-dir");
    browser.send_keys(&dir, &bundle.display().to_string());
    browser.click(&browser.find("form[action='/files/bundle'] button"));
    browser.wait_for("#to-problems", WAIT);
    browser.goto(&format!("{}/migrate", s.origin()));
    browser.click(&browser.find("#migrate"));
    browser.accept_alert();
    let phase = browser.wait_for("#phase", WAIT);
    let first = browser.text(&phase);
    // A mark on this page: gone if the page were loaded again.
    browser.execute(
        "window.hmSamePage = true; return null;",
        serde_json::json!([]),
    );
    let script = format!(
        "const p = document.querySelector('#phase'); \
         return window.hmSamePage === true && !!p && p.textContent !== {first:?} \
         && document.querySelectorAll('#phases li').length >= 2;"
    );
    browser.wait_until(&script, Duration::from_secs(300));
    // The members written, counted against their total, in the list of phases.
    browser.wait_until(
        "return window.hmSamePage === true && [...document.querySelectorAll('#phases li')]\
         .some(li => li.textContent === 'writing members 20000 of 20000 rows');",
        Duration::from_secs(300),
    );
    shot(&browser, "10-migrating");
    let outcome = browser.wait_for("#outcome", Duration::from_secs(600));
    assert!(
        browser.text(&outcome).contains("committed"),
        "{}",
        browser.text(&outcome)
    );
    for check in browser.find_all("#checks li") {
        assert_eq!(browser.attribute(&check, "class").as_deref(), Some("pass"));
    }
}

fn the_example_workbooks_migrate_from_the_page() {
    for book in ["techne.xlsx", "techne.ods"] {
        let (_db, url) = common::fresh_sqlite();
        let s = Served::start(&url, &[]);
        let cookie = s.session();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(book);
        let r = upload(
            &s,
            &cookie,
            &[(book, &std::fs::read(&path).expect("the example"))],
        );
        assert_eq!(r.status, 303, "{book}: {}", r.body);
        let page = get(&s, &cookie, "/problems");
        assert!(
            page.body.contains("✓ No errors in"),
            "{book}: {}",
            page.body
        );
        let plan = get(&s, &cookie, "/plan");
        assert!(
            plan.body.contains(
                "<tr data-table=\"members\"><td>members</td><td class=\"inserted\">12</td>"
            ),
            "{book}: {}",
            plan.body
        );
        let r = post_form(&s, &cookie, "/migrate", "");
        assert_eq!(r.status, 303, "{}", r.body);
        let deadline = Instant::now() + Duration::from_secs(120);
        let page = loop {
            let page = get(&s, &cookie, "/migrate");
            if page.body.contains("id=\"outcome\"") {
                break page;
            }
            assert!(Instant::now() < deadline, "{book}: no outcome");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            page.body.contains("run 1 committed"),
            "{book}: {}",
            page.body
        );
        assert!(
            !page.body.contains("class=\"fail\""),
            "{book}: {}",
            page.body
        );
        // The same rows as the CSV bundle gives.
        let csv = std::fs::read_to_string(techne().join("members.csv")).expect("members.csv");
        let emails: Vec<String> = csv
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .filter(|e| !e.is_empty())
            .map(str::to_lowercase)
            .collect();
        let conn = common::sqlite_conn(&url);
        let mut stmt = conn
            .prepare("SELECT email FROM members ORDER BY email")
            .expect("query");
        let mut stored: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("rows")
            .map(|r| r.expect("email").to_lowercase())
            .collect();
        stored.sort();
        let mut emails = emails;
        emails.sort();
        assert_eq!(stored, emails, "{book}");
    }
}
