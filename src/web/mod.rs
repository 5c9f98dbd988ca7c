//! `habitat-migrate serve`: the whole migration as a local web page, for a treasurer who does not
//! live in a terminal.
//!
//! The page is a thin face on the library: every rule, repair, plan, import, check and restore is
//! the library's, called as the command line calls it. axum on tokio serves plain HTML built here
//! (the assets are compiled in with `include_str!`, nothing is fetched from the network); the
//! pipeline stays synchronous and runs on tokio's blocking threads.
//!
//! Safety (see DESIGN.md, "The web page"): the server listens on the loopback interface unless
//! `--listen` says otherwise; the printed URL carries a one-time token that is traded for a
//! session cookie; every request must carry that cookie, name an allowed `Host` (no DNS
//! rebinding) and, when it changes anything, come from the page's own origin; uploads are bounded;
//! one run at a time, by the store's writer lock and a flag the second tab is told about.
//!
//! Here: configuration, the server, the safety layer and the progress of a run; in `workspace`,
//! the files and their edits; in `workbook`, a workbook made into those files; in `pages`, what
//! each step shows; in `handlers`, the requests.

mod handlers;
mod pages;
pub mod workbook;
pub mod workspace;

use std::future::IntoFuture;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use indicatif::ProgressBar;
use jiff::Timestamp;

use crate::store::DbUrl;

use self::workspace::Workspace;

/// The largest upload accepted by default, in MiB.
pub const DEFAULT_MAX_UPLOAD_MIB: usize = 100;

/// What `serve` was asked for, checked once.
#[derive(Clone, Debug)]
pub struct Config {
    pub database: DbUrl,
    pub backup_dir: PathBuf,
    pub log_dir: PathBuf,
    pub addr: SocketAddr,
    /// `--listen` was given: other hosts may connect (and the warning was printed).
    pub listen: bool,
    pub max_upload_bytes: usize,
    pub open_browser: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {addr}: it is not a loopback address; give --listen {addr} to mean it"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the web server: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
}

impl Config {
    /// The address for `--port` alone: the loopback interface.
    pub fn loopback(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }
}

/// A run the page started, and how it ended.
#[derive(Clone, Debug, Default)]
pub(crate) enum RunState {
    #[default]
    Idle,
    Running {
        what: String,
        started: Timestamp,
        /// The phases of the run so far, told by the pipeline.
        progress: Arc<RunProgress>,
    },
    Finished {
        what: String,
        outcome: pages::RunOutcome,
    },
}

/// The phases of a run as the pipeline tells them ([`crate::progress::Observer`]), each with its
/// row counter, for the page to show while the run goes on.
#[derive(Default)]
pub(crate) struct RunProgress {
    phases: Mutex<Vec<(String, ProgressBar)>>,
}

impl std::fmt::Debug for RunProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunProgress").finish_non_exhaustive()
    }
}

impl crate::progress::Observer for RunProgress {
    fn phase(&self, name: &str, rows: &ProgressBar) {
        self.phases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name.to_string(), rows.clone()));
    }
}

impl RunProgress {
    /// The phases so far as JSON: `phase` (the current one, or null before the first), its
    /// `done` and `total` rows (`total` null where the pipeline does not know it), and every
    /// phase in order with the same and whether it has `finished`.
    pub(crate) fn snapshot(&self) -> serde_json::Value {
        let phases = self
            .phases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let one = |(name, rows): &(String, ProgressBar)| {
            serde_json::json!({
                "name": name,
                "done": rows.position(),
                "total": rows.length(),
                "finished": rows.is_finished(),
            })
        };
        let current = phases.last();
        serde_json::json!({
            "phase": current.map(|(name, _)| name.clone()),
            "done": current.map(|(_, rows)| rows.position()),
            "total": current.and_then(|(_, rows)| rows.length()),
            "phases": phases.iter().map(one).collect::<Vec<_>>(),
        })
    }
}

/// Everything the handlers share.
pub(crate) struct App {
    config: Config,
    /// The token of the printed URL, until it is traded for the cookie.
    url_token: Mutex<Option<String>>,
    /// The cookie's value.
    session: String,
    /// The port listened on: a request's `Host` must name it.
    port: u16,
    workspace: Mutex<Workspace>,
    run: Mutex<RunState>,
}

impl App {
    fn workspace(&self) -> MutexGuard<'_, Workspace> {
        // A handler that panicked holding the lock left the files as they were: go on with them.
        self.workspace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn run_state(&self) -> MutexGuard<'_, RunState> {
        self.run
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

const COOKIE: &str = "habitat_migrate_session";

/// A random token: 32 bytes from the operating system, as hex.
fn token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness at all: use the clock and the process id, hashed, rather than refuse.
        let seed = format!("{:?}{}", Timestamp::now(), std::process::id());
        return crate::checksum::sha256_bytes(seed.as_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the server until interrupted. Prints the URL (with its token) on standard output.
pub fn serve(config: Config) -> Result<(), ServeError> {
    if !config.listen && !config.addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback { addr: config.addr });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run_server(config))
}

async fn run_server(config: Config) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.addr,
        source,
    })?;
    let url_token = token();
    let dir = std::env::temp_dir().join(format!(
        "habitat-migrate-serve-{}-{}",
        std::process::id(),
        &url_token[..8]
    ));
    let workspace = Workspace::create(dir.clone())?;
    let shown_host = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let link = format!("http://{shown_host}/?token={url_token}");
    let open_browser = config.open_browser;
    let app = Arc::new(App {
        config,
        url_token: Mutex::new(Some(url_token)),
        session: token(),
        port: addr.port(),
        workspace: Mutex::new(workspace),
        run: Mutex::new(RunState::Idle),
    });
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "Serving the migration page for {}",
            pages::database_label(&app.config.database)
        );
        let _ = writeln!(
            out,
            "Open this link in your browser (it works once; keep it private):\n  {link}"
        );
        let _ = writeln!(out, "Press Ctrl+C to stop.");
        let _ = out.flush();
    }
    if open_browser {
        open_in_browser(&link);
    }
    let router = handlers::router(Arc::clone(&app));
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    );
    // On a signal, stop at once rather than wait for the browser's idle connections to close:
    // the workspace (the treasurer's files) must go with the server.
    let served = tokio::select! {
        served = server.into_future() => served,
        () = stopped() => Ok(()),
    };
    let _ = std::fs::remove_dir_all(&dir);
    served.map_err(ServeError::Runtime)
}

/// Resolves on Ctrl+C, or on SIGTERM where there is one, so that the workspace is removed.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Asks the desktop to open the link; a failure only means the person copies it.
fn open_in_browser(link: &str) {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![link])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", link])
    } else {
        ("xdg-open", vec![link])
    };
    if let Err(e) = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("warning: could not open a browser ({program}: {e}); open the link yourself");
    }
}

/// The safety layer, in front of every request: peer, Host, token or cookie, Origin.
pub(crate) async fn guard(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if !app.config.listen && !peer.ip().is_loopback() {
        return refuse(
            StatusCode::FORBIDDEN,
            "This page only answers the computer it runs on.",
        );
    }
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !host_allowed(&host, app.port) {
        // A page on another site that made its name resolve to this machine (DNS rebinding).
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "Refused: this request names another host. Open the link habitat-migrate printed.",
        );
    }
    if let Some(query) = request.uri().query() {
        if let Some(given) = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
        {
            return trade_token(&app, given, request.uri().path());
        }
    }
    if !has_session(&app, headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Refused: this browser has no key to this page. Open the link that `habitat-migrate serve` \
             printed (it works once; restart serve for a new one).",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if origin != Some(&format!("http://{host}")) {
            return refuse(
                StatusCode::FORBIDDEN,
                "Refused: a change sent from another page or site.",
            );
        }
    }
    let mut response = next.run(request).await;
    secure_headers(response.headers_mut());
    response
}

/// The printed URL's token, used once: a cookie for the session, and a redirect to the same page
/// without the token (so that it stays out of the history and of bookmarks).
fn trade_token(app: &App, given: &str, path: &str) -> Response {
    let mut slot = app
        .url_token
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let matches = slot
        .as_deref()
        .is_some_and(|t| constant_time_eq(t.as_bytes(), given.as_bytes()));
    if !matches {
        return refuse(
            StatusCode::FORBIDDEN,
            "Refused: this link's key is wrong or was used already. Restart `habitat-migrate serve` \
             for a new link.",
        );
    }
    *slot = None;
    let mut response = Redirect::to(if path.is_empty() { "/" } else { path }).into_response();
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        app.session
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    secure_headers(response.headers_mut());
    response
}

/// Whether a `Host` header names this server: `localhost` or an IP address, with the port listened
/// on. A DNS rebinding attack needs a name of its own that resolves here, so a name other than
/// `localhost` is refused; an IP address cannot be rebound.
fn host_allowed(host: &str, port: u16) -> bool {
    let Some((name, given_port)) = host.rsplit_once(':') else {
        return false;
    };
    if given_port.parse::<u16>().ok() != Some(port) {
        return false;
    }
    let bracketed = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
    name == "localhost"
        || name.parse::<Ipv4Addr>().is_ok()
        || bracketed.is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok())
}

fn has_session(app: &App, headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|value| constant_time_eq(value.as_bytes(), app.session.as_bytes()))
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Headers on every page: no framing, no scripts or styles but the page's own, no referrer to other sites, no
/// caching of the treasurer's data.
fn secure_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Not `no-referrer`: under it a browser sends `Origin: null` with a form, which the Origin
    // check must refuse. `same-origin` keeps the page's addresses from any other site all the same.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::CACHE_CONTROL, "no-store");
}

/// A refusal as a small page of its own (no layout: the person has no session yet).
fn refuse(status: StatusCode, message: &str) -> Response {
    let mut response = (status, pages::refusal(message)).into_response();
    secure_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_by_address_or_localhost_with_the_port() {
        assert!(host_allowed("127.0.0.1:8080", 8080));
        assert!(host_allowed("localhost:8080", 8080));
        assert!(host_allowed("[::1]:8080", 8080));
        assert!(host_allowed("192.168.1.5:8080", 8080));
        assert!(!host_allowed("127.0.0.1:8081", 8080));
        assert!(!host_allowed("127.0.0.1", 8080));
        assert!(!host_allowed("evil.example:8080", 8080));
        assert!(!host_allowed("localhost.evil.example:8080", 8080));
        assert!(!host_allowed("[evil]:8080", 8080));
    }
}
