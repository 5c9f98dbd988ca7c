//! The requests: each step's page and each change, calling the library on tokio's blocking
//! threads (the pipeline is synchronous; a request never blocks the server's own threads).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde::Deserialize;

use crate::diagnostic::Severity;
use crate::import;
use crate::source::{Bundle, Table};
use crate::store::{self, StoreError};
use crate::validate::KnownRefs;
use crate::validate::repair::{self, RepairKind};

use super::pages::{self, RepairGroup, RunOutcome};
use super::{App, RunProgress, RunState};

type Shared = State<Arc<App>>;

pub(crate) fn router(app: Arc<App>) -> Router {
    let limit = app.config.max_upload_bytes;
    Router::new()
        .route("/", get(|| async { Redirect::to("/files") }))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .route("/files", get(files_page).post(upload))
        .route("/files/bundle", post(bundle))
        .route("/files/clear", post(clear))
        .route("/problems", get(problems_page))
        .route("/api/edit", post(edit))
        .route("/repairs/{kind}", get(repair_page).post(apply_repair))
        .route("/download/{table}", get(download))
        .route("/annotated/{table}", get(annotated))
        .route("/api/progress", get(progress))
        .route("/plan", get(plan_page))
        .route("/migrate", get(migrate_page).post(start_migrate))
        .route("/signoff", get(signoff_page))
        .route("/signoff/report", get(signoff_report))
        .route("/restore/{run}", get(restore_page).post(restore))
        // The limit is checked here, with room for the form's own bytes; `upload` says so clearly.
        .layer(DefaultBodyLimit::max(limit.saturating_add(64 * 1024)))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            super::guard,
        ))
        .with_state(app)
}

/// A failure shown on the page in the layout: the message, never a trace.
pub(crate) struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        let status = if matches!(e, StoreError::Busy) {
            StatusCode::CONFLICT
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        PageError::new(status, e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // The database is not known here; the layout names none rather than guess.
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>habitat-migrate</title>\
             <link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body><main>{}\
             <p><a href=\"/files\">Back to the files</a></p></main></body></html>",
            pages::notice("error", &self.message)
        );
        (self.status, Html(body)).into_response()
    }
}

type PageResult = Result<Html<String>, PageError>;

/// Runs blocking library work off the server's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the work stopped unexpectedly; nothing was written. Please report this.",
        ))
    })
}

fn html(app: &App, title: &str, step: &str, body: &str) -> Html<String> {
    Html(pages::page(title, step, &app.config.database, body))
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::SCRIPT,
    )
}

/// What the database already holds that the files may refer to, or a note why it was not asked.
fn known_refs(app: &App) -> (KnownRefs<'static>, Option<String>) {
    match store::open_existing(&app.config.database) {
        Ok(Some(mut s)) => match import::known_refs(s.as_mut()) {
            Ok(k) => (k, None),
            Err(e) => (KnownRefs::default(), Some(not_checked(&e))),
        },
        Ok(None) => (KnownRefs::default(), None),
        Err(e) => (KnownRefs::default(), Some(not_checked(&e))),
    }
}

fn not_checked(e: &StoreError) -> String {
    format!("The database was not checked ({e}); references are checked against the files only.")
}

fn refuse_while_running(app: &App) -> Result<(), PageError> {
    if let RunState::Running { what, .. } = &*app.run_state() {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            format!("{what} is in progress; the files cannot change until it ends."),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

async fn files_page(State(app): Shared) -> PageResult {
    blocking(move || {
        let (known, _) = known_refs(&app);
        let mut ws = app.workspace();
        let missing = ws.missing();
        let any = ws.files().next().is_some();
        let validation = any.then(|| ws.validation(&known).clone());
        let uploads: Vec<_> = ws.files().collect();
        let body = pages::files(&uploads, &missing, validation.as_ref());
        Ok(html(&app, "Files", "/files", &body))
    })
    .await
}

async fn upload(State(app): Shared, mut form: Multipart) -> Result<Response, PageError> {
    refuse_while_running(&app)?;
    let limit = app.config.max_upload_bytes;
    let too_large = || {
        PageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The upload is larger than the limit of {} MiB. Give a folder path instead (nothing is \
                 copied), or restart serve with a larger --max-upload.",
                limit >> 20
            ),
        )
    };
    let mut received: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total = 0usize;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(PageError::new(
                    StatusCode::BAD_REQUEST,
                    format!("The upload could not be read: {}", e.body_text()),
                ));
            }
        };
        let name = field.file_name().unwrap_or_default().to_string();
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(PageError::new(
                    StatusCode::BAD_REQUEST,
                    format!("The upload could not be read: {}", e.body_text()),
                ));
            }
        };
        total = total.saturating_add(bytes.len());
        if total > limit {
            return Err(too_large());
        }
        if !name.is_empty() {
            received.push((name, bytes.to_vec()));
        }
    }
    if received.is_empty() {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "No file was given: pick or drop the files first.",
        ));
    }
    // A workbook is a whole bundle: alone, its sheets are the files.
    if received
        .iter()
        .any(|(name, _)| super::workbook::is_workbook(name))
    {
        if received.len() > 1 {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "A workbook (.xlsx, .ods) holds the whole bundle: give it alone, not with other files.",
            ));
        }
        return blocking(move || {
            let (name, bytes) = received.remove(0);
            app.workspace()
                .add_workbook(&name, &bytes, limit)
                .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            Ok(Redirect::to("/files").into_response())
        })
        .await;
    }
    // Two files for one table in one upload: say so, as the command line does for a bundle.
    for (i, (name, bytes)) in received.iter().enumerate() {
        let table = super::workspace::table_of(name, bytes);
        if let Some((other, _)) = received[..i]
            .iter()
            .find(|(n, b)| table.is_some() && super::workspace::table_of(n, b) == table)
        {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Two files for {}: {other} and {name}; give one.",
                    table.map_or("", Table::stem)
                ),
            ));
        }
    }
    blocking(move || {
        let mut ws = app.workspace();
        for (name, bytes) in received {
            ws.add(&name, bytes)
                .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        }
        Ok(Redirect::to("/files").into_response())
    })
    .await
}

#[derive(Deserialize)]
struct BundleForm {
    dir: String,
}

async fn bundle(State(app): Shared, Form(form): Form<BundleForm>) -> Result<Redirect, PageError> {
    refuse_while_running(&app)?;
    blocking(move || {
        let dir = std::path::PathBuf::from(form.dir.trim());
        let limit = app.config.max_upload_bytes;
        if super::workbook::is_workbook(&dir.to_string_lossy()) && dir.is_file() {
            let too_large = std::fs::metadata(&dir).is_ok_and(|m| m.len() > limit as u64);
            if too_large {
                return Err(PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "{}: larger than the limit of {} MiB (restart serve with a larger --max-upload)",
                        dir.display(),
                        limit >> 20
                    ),
                ));
            }
            let bytes = std::fs::read(&dir).map_err(|e| {
                PageError::new(StatusCode::BAD_REQUEST, format!("{}: cannot read: {e}", dir.display()))
            })?;
            let name = dir.display().to_string();
            app.workspace()
                .add_workbook(&name, &bytes, limit)
                .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            return Ok(Redirect::to("/files"));
        }
        let bundle =
            Bundle::discover(&dir).map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        let mut read = Vec::new();
        for f in &bundle.files {
            let bytes = std::fs::read(&f.path).map_err(|e| {
                PageError::new(StatusCode::BAD_REQUEST, format!("{}: cannot read: {e}", f.display))
            })?;
            if bytes.len() > app.config.max_upload_bytes {
                return Err(PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "{}: larger than the limit of {} MiB (restart serve with a larger --max-upload)",
                        f.display,
                        app.config.max_upload_bytes >> 20
                    ),
                ));
            }
            let name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            read.push((name, bytes));
        }
        let mut ws = app.workspace();
        ws.clear()
            .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        for (name, bytes) in read {
            ws.add(&name, bytes)
                .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        }
        Ok(Redirect::to("/files"))
    })
    .await
}

async fn clear(State(app): Shared) -> Result<Redirect, PageError> {
    refuse_while_running(&app)?;
    blocking(move || {
        app.workspace()
            .clear()
            .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(Redirect::to("/files"))
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Problems, edits, repairs, downloads
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ProblemsQuery {
    file: Option<String>,
    page: Option<usize>,
}

fn table_named(stem: &str) -> Option<Table> {
    Table::ALL.into_iter().find(|t| t.stem() == stem)
}

async fn problems_page(State(app): Shared, Query(q): Query<ProblemsQuery>) -> PageResult {
    blocking(move || {
        let (known, note) = known_refs(&app);
        let mut ws = app.workspace();
        if ws.files().next().is_none() {
            let body = pages::notice(
                "warning",
                "No files yet: give them on the Files page first.",
            );
            return Ok(html(&app, "Problems", "/problems", &body));
        }
        let validation = ws.validation(&known).clone();
        let groups = repair_groups(&ws, &validation);
        let uploads: Vec<_> = ws.files().collect();
        // The file asked for, else the first with errors, else the first.
        let current = q
            .file
            .as_deref()
            .and_then(table_named)
            .filter(|t| uploads.iter().any(|u| u.table == *t))
            .or_else(|| {
                uploads
                    .iter()
                    .find(|u| workspace_errors(&validation, &u.name) > 0)
                    .map(|u| u.table)
            })
            .or_else(|| uploads.first().map(|u| u.table))
            .unwrap_or(Table::Members);
        let view = pages::ProblemsView {
            uploads,
            current,
            page: q.page.unwrap_or(1),
            validation: &validation,
            groups: &groups,
            database_note: note,
        };
        Ok(html(&app, "Problems", "/problems", &pages::problems(&view)))
    })
    .await
}

fn workspace_errors(v: &crate::validate::Validation, file: &str) -> usize {
    super::workspace::counts(v.diagnostics.items(), file).0
}

/// The findings an unambiguous repair fixes, grouped by repair, with each cell's full value.
fn repair_groups(
    ws: &super::workspace::Workspace,
    v: &crate::validate::Validation,
) -> Vec<RepairGroup> {
    let mut groups: BTreeMap<RepairKind, RepairGroup> = BTreeMap::new();
    for d in v.diagnostics.items() {
        let (Some(line), Some(column)) = (d.line, &d.column) else {
            continue;
        };
        if d.severity != Severity::Error {
            continue;
        }
        let Some(u) = ws.files().find(|u| u.name == d.file) else {
            continue;
        };
        let Some(before) = ws.cell(u.table, line, column) else {
            continue;
        };
        if let Some(r) = repair::suggest(d.rule, column, &before) {
            groups
                .entry(r.kind)
                .or_insert_with(|| RepairGroup {
                    kind: r.kind,
                    items: Vec::new(),
                })
                .items
                .push((d.file.clone(), line, column.clone(), before, r.after));
        }
    }
    groups.into_values().collect()
}

#[derive(Deserialize)]
struct EditRequest {
    file: String,
    line: u64,
    column: String,
    value: String,
}

async fn edit(State(app): Shared, Json(req): Json<EditRequest>) -> Response {
    let result = async {
        refuse_while_running(&app)?;
        blocking(move || {
            let table = table_named(&req.file)
                .ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, "no such file"))?;
            app.workspace()
                .edit(table, req.line, &req.column, &req.value)
                .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.to_string()))
        })
        .await
    }
    .await;
    match result {
        Ok(()) => Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => (
            e.status,
            Json(serde_json::json!({"ok": false, "error": e.message})),
        )
            .into_response(),
    }
}

fn group_of(app: &App, kind: &str) -> Result<RepairGroup, PageError> {
    let kind = RepairKind::from_slug(kind)
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no such repair"))?;
    let (known, _) = known_refs(app);
    let mut ws = app.workspace();
    let validation = ws.validation(&known).clone();
    repair_groups(&ws, &validation)
        .into_iter()
        .find(|g| g.kind == kind)
        .ok_or_else(|| {
            PageError::new(
                StatusCode::NOT_FOUND,
                "Nothing left to repair of this kind: the files changed since.",
            )
        })
}

async fn repair_page(State(app): Shared, Path(kind): Path<String>) -> PageResult {
    blocking(move || {
        let group = group_of(&app, &kind)?;
        Ok(html(
            &app,
            "Repair",
            "/problems",
            &pages::repair_preview(&group),
        ))
    })
    .await
}

async fn apply_repair(State(app): Shared, Path(kind): Path<String>) -> Result<Redirect, PageError> {
    refuse_while_running(&app)?;
    blocking(move || {
        let group = group_of(&app, &kind)?;
        let mut ws = app.workspace();
        for (file, line, column, _, after) in &group.items {
            let Some(table) = ws.files().find(|u| &u.name == file).map(|u| u.table) else {
                continue;
            };
            ws.edit(table, *line, column, after)
                .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        }
        Ok(Redirect::to("/problems"))
    })
    .await
}

async fn download(State(app): Shared, Path(table): Path<String>) -> Result<Response, PageError> {
    let table = table_named(table.trim_end_matches(".csv"))
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no such file"))?;
    let ws = app.workspace();
    let u = ws
        .get(table)
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "this file was not given"))?;
    Ok(csv_download(&u.download_name(), u.bytes.clone()))
}

/// A CSV file as a download named `name` (made safe for the header).
fn csv_download(name: &str, bytes: Vec<u8>) -> Response {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The annotated copy of a file as it stands: every row with its problems and hints in two
/// leading columns, by the same function as `--annotate`. Given back to the page, it is read as
/// the file (the two columns are ignored with a note).
async fn annotated(State(app): Shared, Path(table): Path<String>) -> Result<Response, PageError> {
    let table = table_named(table.trim_end_matches(".csv"))
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no such file"))?;
    blocking(move || {
        let (known, _) = known_refs(&app);
        let mut ws = app.workspace();
        let diagnostics = ws.validation(&known).diagnostics.items().to_vec();
        let file = ws
            .source_files()
            .into_iter()
            .find(|f| f.table == table)
            .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "this file was not given"))?;
        let u = ws
            .get(table)
            .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "this file was not given"))?;
        let (_, bytes) = crate::annotate::annotate_bytes(&file, &u.bytes, &diagnostics)
            .map_err(|e| PageError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        Ok(csv_download(
            &format!("{}-problems.csv", table.stem()),
            bytes,
        ))
    })
    .await
}

/// How the run in progress is going, for the migrate page's script to show while it runs.
async fn progress(State(app): Shared) -> Response {
    let state = app.run_state().clone();
    let body = match state {
        RunState::Running {
            what,
            started,
            progress,
        } => {
            let mut json = progress.snapshot();
            json["running"] = serde_json::json!(true);
            json["what"] = serde_json::json!(what);
            json["seconds"] = serde_json::json!(Timestamp::now().duration_since(started).as_secs());
            json
        }
        RunState::Finished { .. } => serde_json::json!({"running": false, "finished": true}),
        RunState::Idle => serde_json::json!({"running": false, "finished": false}),
    };
    Json(body).into_response()
}

// ---------------------------------------------------------------------------------------------
// Plan, migrate
// ---------------------------------------------------------------------------------------------

/// Options for an import the page runs, as `migrate` would.
fn import_options(
    app: &App,
    dry_run: bool,
    progress: crate::progress::Progress,
) -> import::Options {
    import::Options {
        command: "migrate (web page)".to_string(),
        dry_run,
        no_backup: false,
        backup_dir: app.config.backup_dir.clone(),
        log_dir: app.config.log_dir.clone(),
        progress,
        verify: true,
        corrections: import::CorrectionPolicy::Refuse,
    }
}

/// Why the files cannot be imported yet, if they cannot.
fn not_ready(app: &App) -> Option<String> {
    let (known, _) = known_refs(app);
    let mut ws = app.workspace();
    let missing = ws.missing();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|t| t.stem()).collect();
        return Some(format!(
            "Still needed on the Files page: {}.",
            names.join(" and ")
        ));
    }
    if !ws.validation(&known).ok() {
        return Some("The files still have errors: fix them on the Problems page first.".into());
    }
    None
}

async fn plan_page(State(app): Shared) -> PageResult {
    blocking(move || {
        if let Some(why) = not_ready(&app) {
            return Ok(html(&app, "Plan", "/plan", &pages::notice("warning", &why)));
        }
        let files = app.workspace().source_files();
        let mut store = store::open_for_import(&app.config.database, true)?;
        let body = match import::run(
            store.as_mut(),
            &files,
            &import_options(&app, true, crate::progress::Progress::hidden()),
        ) {
            Ok(report) => pages::plan(&report, &app.config.database),
            Err(e) => match pages::import_failure(&e) {
                RunOutcome::Failed { message, .. } => pages::notice("error", &message),
                RunOutcome::Imported(_) => String::new(),
            },
        };
        Ok(html(&app, "Plan", "/plan", &body))
    })
    .await
}

async fn migrate_page(State(app): Shared) -> PageResult {
    blocking(move || {
        let state = app.run_state().clone();
        let body = match state {
            RunState::Running {
                what,
                started,
                progress,
            } => pages::running(&what, started, &progress.snapshot()),
            RunState::Finished { what, outcome } => pages::finished(&what, &outcome),
            RunState::Idle => {
                pages::migrate_form(&app.config.database, not_ready(&app).map_or(Ok(()), Err))
            }
        };
        let mut page = pages::page("Migrate", "/migrate", &app.config.database, &body);
        if matches!(&*app.run_state(), RunState::Running { .. }) {
            page = page.replace(
                "<head>",
                // The script polls for the phase; without it, the page reloads itself.
                "<head><noscript><meta http-equiv=\"refresh\" content=\"1\"></noscript>",
            );
        }
        Ok(Html(page))
    })
    .await
}

async fn start_migrate(State(app): Shared) -> Result<Redirect, PageError> {
    let run_progress = Arc::new(RunProgress::default());
    {
        let mut state = app.run_state();
        if let RunState::Running { what, started, .. } = &*state {
            return Err(PageError::new(
                StatusCode::CONFLICT,
                format!(
                    "{what} is already in progress (started {}); wait for it to finish.",
                    crate::domain::format_instant(*started)
                ),
            ));
        }
        *state = RunState::Running {
            what: "The migration".into(),
            started: Timestamp::now(),
            progress: Arc::clone(&run_progress),
        };
    }
    let worker = Arc::clone(&app);
    tokio::task::spawn_blocking(move || {
        // A panic must not leave the page saying "in progress" for ever.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            migrate_now(&worker, run_progress)
        }))
        .unwrap_or_else(|_| RunOutcome::Failed {
            message: "The migration stopped unexpectedly; its transaction was not committed. \
                          Please report this."
                .into(),
            checks: None,
        });
        *worker.run_state() = RunState::Finished {
            what: "The migration".into(),
            outcome,
        };
    });
    Ok(Redirect::to("/migrate"))
}

fn migrate_now(app: &App, run_progress: Arc<RunProgress>) -> RunOutcome {
    if let Some(why) = not_ready(app) {
        return RunOutcome::Failed {
            message: why,
            checks: None,
        };
    }
    let files = app.workspace().source_files();
    let mut store = match store::open_for_import(&app.config.database, false) {
        Ok(s) => s,
        Err(e) => {
            return RunOutcome::Failed {
                message: e.to_string(),
                checks: None,
            };
        }
    };
    let progress = crate::progress::Progress::hidden().with(run_progress);
    match import::run(
        store.as_mut(),
        &files,
        &import_options(app, false, progress),
    ) {
        Ok(report) => RunOutcome::Imported(Box::new(report)),
        Err(e) => pages::import_failure(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// Sign off, restore
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct SignoffQuery {
    run: Option<i64>,
}

/// The report of one run for the sign-off page.
///
/// This is where the HTML sign-off report plugs in once it is in the library: until then the
/// page shows the run as `runs show` prints it.
fn run_report(store: &mut dyn store::Store, id: i64) -> Result<String, PageError> {
    Ok(match store.run(id)? {
        Some((run, changes)) => format!(
            "<section id=\"report\"><h2>Run {id}</h2>\
             <p><a id=\"signoff-report\" href=\"/signoff/report?run={id}\" target=\"_blank\">\
             Open the sign-off report of run {id}</a> (one page to print and sign; \
             <code>habitat-migrate report --run {id} --output FILE.pdf</code> writes it as PDF)</p>\
             <pre>{}</pre></section>",
            pages::esc(&crate::report::run_human(&run, &changes))
        ),
        None => pages::notice("warning", &format!("No run {id} is recorded.")),
    })
}

/// The sign-off page of a database that holds no Habitat schema yet.
fn no_runs_yet(app: &App) -> Html<String> {
    let body = pages::notice(
        "warning",
        "No runs yet: this database holds no Habitat schema.",
    );
    html(app, "Sign off", "/signoff", &body)
}

/// The sign-off report of a run, the same document `habitat-migrate report` writes.
async fn signoff_report(State(app): Shared, Query(q): Query<SignoffQuery>) -> PageResult {
    blocking(move || {
        let Some(mut store) = store::open_existing(&app.config.database)? else {
            return Ok(no_runs_yet(&app));
        };
        match crate::report::signoff::html(store.as_mut(), q.run) {
            Ok((_, page)) => Ok(Html(page)),
            Err(e) => {
                let body = pages::notice("error", &e.to_string());
                Ok(html(&app, "Sign off", "/signoff", &body))
            }
        }
    })
    .await
}

async fn signoff_page(State(app): Shared, Query(q): Query<SignoffQuery>) -> PageResult {
    blocking(move || {
        let Some(mut store) = store::open_existing(&app.config.database)? else {
            return Ok(no_runs_yet(&app));
        };
        let runs = store.runs(50)?;
        let selected = q
            .run
            .or_else(|| runs.iter().find(|r| !r.dry_run).map(|r| r.id));
        let report = match selected {
            Some(id) => run_report(store.as_mut(), id)?,
            None => String::new(),
        };
        Ok(html(
            &app,
            "Sign off",
            "/signoff",
            &pages::history(&runs, selected, &report),
        ))
    })
    .await
}

fn run_with_backup(app: &App, id: i64) -> Result<crate::model::RunRecord, PageError> {
    let mut store = store::open_existing(&app.config.database)?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no runs in this database"))?;
    store
        .run(id)?
        .map(|(run, _)| run)
        .filter(|r| r.backup_file.is_some())
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("run {id} has no backup")))
}

async fn restore_page(State(app): Shared, Path(id): Path<i64>) -> PageResult {
    blocking(move || {
        let run = run_with_backup(&app, id)?;
        Ok(html(
            &app,
            "Restore",
            "/signoff",
            &pages::restore_confirm(&run, &app.config.database),
        ))
    })
    .await
}

async fn restore(State(app): Shared, Path(id): Path<i64>) -> PageResult {
    {
        let mut state = app.run_state();
        if let RunState::Running { what, .. } = &*state {
            return Err(PageError::new(
                StatusCode::CONFLICT,
                format!("{what} is in progress; restore when it has finished."),
            ));
        }
        *state = RunState::Running {
            what: "A restore".into(),
            started: Timestamp::now(),
            progress: Arc::new(RunProgress::default()),
        };
    }
    let worker = Arc::clone(&app);
    let result = blocking(move || {
        let run = run_with_backup(&worker, id)?;
        let file = std::path::PathBuf::from(run.backup_file.unwrap_or_default());
        let mut store = store::open_existing(&worker.config.database)?
            .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no Habitat schema"))?;
        crate::backup::restore(store.as_mut(), &file, Some(&worker.config.backup_dir))
            .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await;
    *app.run_state() = RunState::Idle;
    let (manifest, safety) = result?;
    let mut body = pages::notice(
        "ok",
        &format!(
            "Restored the backup taken before run {id} in one transaction; every table's checksum matches the backup.{}",
            safety
                .map(|s| format!(
                    " The contents before the restore were backed up to {}.",
                    s.display()
                ))
                .unwrap_or_default()
        ),
    );
    body.insert_str(0, "<h1>Restore</h1>");
    body.push_str(&format!(
        "<p id=\"restored\">{} tables restored.</p><p><a href=\"/signoff\">Back to the history</a></p>",
        manifest.tables.len().max(manifest.row_counts.len())
    ));
    Ok(html(&app, "Restore", "/signoff", &body))
}
