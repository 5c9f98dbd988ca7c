//! The sign-off report of one run: what a treasurer reads, checks and signs after a migration or
//! an allocation, as a [`Document`] (rendered to HTML by [`Document::to_html`] and to PDF by
//! [`super::pdf::render`]).
//!
//! Everything about the run comes from its record (`runs`: who, when, the command, the source
//! files with their SHA-256, the counts, and in `details` the import's JSON report with its
//! verification, or an allocation's calculation) and its change history, read through typed
//! [`Store`] calls. Two sections describe the database *as it is when the report is made*, and say
//! so: the balance reconciliation (every member, not only the differing ones the run kept) and the
//! accounts whose book balance differs from their tax basis. The backup is checked against its
//! manifest on disk. Long lists are bounded ([`Limits`]) and say how many they leave out and where
//! the rest is.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use uuid::Uuid;

use super::document::{Block, Cell, CheckLine, Column, Document, Mark, Table};
use crate::balances::{self, Verdict};
use crate::domain::format_instant;
use crate::model::{Outcome, RecordedChange, RunRecord};
use crate::money::Money;
use crate::store::{Store, StoreError};

/// How many rows each list of the report shows before it says "and N more".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Changes with their before and after values.
    pub changes: usize,
    /// Members in the reconciliation table (two lines each: balance and tax basis).
    pub members: usize,
    /// Rows of any other list (diagnostics, accounts whose tax basis differs, allocation lines).
    pub rows: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            changes: 500,
            members: 500,
            rows: 500,
        }
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no run {0} recorded (see `habitat-migrate runs list`)")]
    NoSuchRun(i64),
    #[error(
        "no successful run recorded yet: run `habitat-migrate migrate BUNDLE_DIR` first, or name a run with --run ID"
    )]
    NoSuccessfulRun,
    #[error("no member with email {0} (emails are compared ignoring case)")]
    NoSuchMember(String),
    #[error(transparent)]
    Pdf(#[from] super::pdf::PdfError),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

/// The run a report is of: `Some(id)`, or the most recent successful run.
pub fn resolve_run(store: &mut dyn Store, run: Option<i64>) -> Result<i64, ReportError> {
    if let Some(id) = run {
        return Ok(id);
    }
    store
        .runs(1000)?
        .into_iter()
        .find(|r| r.outcome == Outcome::Succeeded)
        .map(|r| r.id)
        .ok_or(ReportError::NoSuccessfulRun)
}

/// The sign-off report of run `run` (default: the last successful one) as one HTML page: what the
/// CLI writes to a file and what a web page can serve.
pub fn html(store: &mut dyn Store, run: Option<i64>) -> Result<(i64, String), ReportError> {
    let id = resolve_run(store, run)?;
    let doc = document(store, id, Limits::default(), jiff::Timestamp::now())?;
    Ok((id, doc.to_html()))
}

/// The same report as PDF bytes.
pub fn pdf(store: &mut dyn Store, run: Option<i64>) -> Result<(i64, Vec<u8>), ReportError> {
    let id = resolve_run(store, run)?;
    let doc = document(store, id, Limits::default(), jiff::Timestamp::now())?;
    Ok((id, super::pdf::render(&doc)?))
}

/// The report of run `id` as a document, made at `now`.
pub fn document(
    store: &mut dyn Store,
    id: i64,
    limits: Limits,
    now: jiff::Timestamp,
) -> Result<Document, ReportError> {
    let (run, changes) = store.run(id)?.ok_or(ReportError::NoSuchRun(id))?;
    let allocation = run.details["format"] == super::allocation::ALLOCATION_FORMAT;
    let newer_runs = store.runs(1)?.first().is_some_and(|r| r.id > id);
    let mut doc = Document {
        title: format!(
            "{} sign-off report — run {id}",
            if allocation {
                "Allocation"
            } else {
                "Migration"
            }
        ),
        subtitle: format!(
            "habitat-migrate {} · database {} · report made {}",
            env!("CARGO_PKG_VERSION"),
            run.database_url,
            format_instant(now)
        ),
        blocks: Vec::new(),
    };
    let blocks = &mut doc.blocks;
    the_run(blocks, &run);
    sources(blocks, &run);
    counts(blocks, &run);
    change_history(blocks, &run, &changes, limits);
    if allocation {
        calculation(blocks, &run.details, limits);
    }
    checks(blocks, &run, limits);
    reconciliation(blocks, store, id, newer_runs, limits)?;
    tax_basis(blocks, store, limits)?;
    backup(blocks, &run);
    blocks.push(Block::Heading("Sign-off".into()));
    blocks.push(Block::Paragraph(format!(
        "I have read this report of run {id}, compared its figures with the co-op's records, and \
         accept the {} as recorded above.",
        if allocation {
            "allocation"
        } else {
            "migration"
        }
    )));
    blocks.push(Block::SignOff(vec![
        "Treasurer".into(),
        "Second signatory".into(),
    ]));
    Ok(doc)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn the_run(blocks: &mut Vec<Block>, run: &RunRecord) {
    blocks.push(Block::Heading("The run".into()));
    let mut facts = vec![
        ("Run".to_string(), run.id.to_string()),
        (
            "Command".to_string(),
            format!("habitat-migrate {}", run.command),
        ),
        ("Outcome".to_string(), run.outcome.to_string()),
        ("Run by".to_string(), run.invoked_by.clone()),
        ("Started".to_string(), format_instant(run.started_at)),
        (
            "Finished".to_string(),
            run.finished_at
                .map_or_else(|| "not recorded".to_string(), format_instant),
        ),
        (
            "Tool".to_string(),
            format!("habitat-migrate {}", run.tool_version),
        ),
        ("Database".to_string(), run.database_url.clone()),
    ];
    if let Some(message) = &run.message {
        facts.push(("Message".to_string(), message.clone()));
    }
    blocks.push(Block::Facts(facts));
}

fn sources(blocks: &mut Vec<Block>, run: &RunRecord) {
    blocks.push(Block::Heading("Source files".into()));
    let files = run.sources.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if files.is_empty() {
        blocks.push(Block::Paragraph("This run read no source file.".into()));
        return;
    }
    // The files of a bundle share a directory: named once, so the table keeps to file names and
    // the checksums print unbroken.
    let paths: Vec<String> = files.iter().map(|f| text(&f["path"])).collect();
    let parent = |p: &str| Path::new(p).parent().map(Path::to_path_buf);
    let shared = paths
        .first()
        .and_then(|p| parent(p))
        .filter(|dir| paths.iter().all(|p| parent(p).as_ref() == Some(dir)));
    if let Some(dir) = &shared {
        blocks.push(Block::Facts(vec![(
            "Directory".into(),
            dir.display().to_string(),
        )]));
    }
    let rows = files
        .iter()
        .zip(&paths)
        .map(|(f, path)| {
            let name = match &shared {
                Some(_) => Path::new(path)
                    .file_name()
                    .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned()),
                None => path.clone(),
            };
            vec![
                name.into(),
                text(&f["rows"]).into(),
                text(&f["sha256"]).into(),
            ]
        })
        .collect();
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("file"),
            Column::figure("rows"),
            Column::text("SHA-256"),
        ],
        rows,
        footer: None,
        note: Some(
            "Compare a file's SHA-256 with `sha256sum FILE` to be sure it is the file that was imported."
                .into(),
        ),
    }));
}

fn counts(blocks: &mut Vec<Block>, run: &RunRecord) {
    blocks.push(Block::Heading("Rows per table".into()));
    let Some(map) = run.counts.as_object().filter(|m| !m.is_empty()) else {
        blocks.push(Block::Paragraph("This run counted no rows.".into()));
        return;
    };
    let order = [
        "allocation_periods",
        "members",
        "capital_accounts",
        "contributions",
        "allocations",
    ];
    let mut tables: Vec<&String> = map.keys().collect();
    tables.sort_by_key(|t| order.iter().position(|o| o == t).unwrap_or(order.len()));
    let figure = |c: &Value, key: &str| c[key].as_u64().unwrap_or(0);
    let mut total = [0u64; 4];
    let rows = tables
        .iter()
        .map(|t| {
            let c = &map[t.as_str()];
            let values = ["inserted", "updated", "unchanged", "deleted"].map(|k| figure(c, k));
            for (sum, v) in total.iter_mut().zip(values) {
                *sum += v;
            }
            std::iter::once(Cell::from(t.as_str()))
                .chain(values.iter().map(|v| Cell::from(v.to_string())))
                .collect()
        })
        .collect();
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("table"),
            Column::figure("inserted"),
            Column::figure("updated"),
            Column::figure("unchanged"),
            Column::figure("deleted"),
        ],
        rows,
        footer: Some(
            std::iter::once(Cell::from("total"))
                .chain(total.iter().map(|v| Cell::from(v.to_string())))
                .collect(),
        ),
        note: None,
    }));
}

fn change_history(
    blocks: &mut Vec<Block>,
    run: &RunRecord,
    changes: &[RecordedChange],
    limits: Limits,
) {
    blocks.push(Block::Heading(format!("Changes ({})", changes.len())));
    if changes.is_empty() {
        blocks.push(Block::Paragraph(
            "No existing value was changed: every row this run wrote was new (counted above) or \
             already as the source has it."
                .into(),
        ));
        return;
    }
    let rows = changes
        .iter()
        .take(limits.changes)
        .map(|c| {
            vec![
                c.table.as_str().into(),
                c.row_key.as_str().into(),
                c.column.as_str().into(),
                c.before.as_deref().unwrap_or("NULL").into(),
                c.after.as_deref().unwrap_or("NULL").into(),
            ]
        })
        .collect();
    let more = changes.len().saturating_sub(limits.changes);
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("table"),
            Column::text("row"),
            Column::text("column"),
            Column::text("before"),
            Column::text("after"),
        ],
        rows,
        footer: None,
        note: Some(if more > 0 {
            format!(
                "The first {} changes are listed, and {more} more — see `habitat-migrate runs show {}` (or with --format json) for every one.",
                limits.changes, run.id
            )
        } else {
            "Every value an update or a deletion changed, before and after; inserted rows are counted above.".into()
        }),
    }));
}

/// An allocation run's calculation, from the document it recorded.
fn calculation(blocks: &mut Vec<Block>, doc: &Value, limits: Limits) {
    blocks.push(Block::Heading("The calculation".into()));
    let weights = &doc["weights"];
    blocks.push(Block::Facts(vec![
        (
            "Period".into(),
            format!("{} ({})", text(&doc["period"]), text(&doc["period_status"])),
        ),
        ("Pool".into(), text(&doc["pool"])),
        (
            "Weights".into(),
            format!(
                "labor {}, capital {}, property {}",
                text(&weights["labor"]),
                text(&weights["capital"]),
                text(&weights["property"])
            ),
        ),
        (
            "Total weighted patronage".into(),
            text(&doc["total_weighted"]),
        ),
    ]));
    let members = doc["members"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows = members
        .iter()
        .take(limits.rows)
        .map(|m| {
            let leftover = if m["leftover_cent"] == true {
                " (+1 cent)"
            } else {
                ""
            };
            vec![
                text(&m["member"]).into(),
                text(&m["weighted"]["labor"]).into(),
                text(&m["weighted"]["capital"]).into(),
                text(&m["weighted"]["property"]).into(),
                text(&m["weighted_total"]).into(),
                text(&m["patronage_score"]).into(),
                format!("{}{leftover}", text(&m["amount"])).into(),
            ]
        })
        .collect();
    let more = members.len().saturating_sub(limits.rows);
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("member"),
            Column::figure(&format!("labor×{}", text(&weights["labor"]))),
            Column::figure(&format!("capital×{}", text(&weights["capital"]))),
            Column::figure(&format!("property×{}", text(&weights["property"]))),
            Column::figure("weighted"),
            Column::figure("patronage score"),
            Column::figure("amount"),
        ],
        rows,
        footer: Some(vec![
            "total".into(),
            "".into(),
            "".into(),
            "".into(),
            text(&doc["total_weighted"]).into(),
            "".into(),
            text(&doc["allocated"]).into(),
        ]),
        note: Some(format!(
            "Each amount is the exact share of the pool rounded down to the cent; the {} cent(s) left over went one each to the largest remainders (marked +1 cent).{}",
            text(&doc["leftover_cents"]),
            if more > 0 {
                format!(" {more} more members are not listed here — see `habitat-migrate runs show` with --format json.")
            } else {
                String::new()
            }
        )),
    }));
    let mut lines = vec![if doc["sum_equals_pool"] == true {
        CheckLine {
            mark: Mark::Pass,
            text: format!(
                "Allocations sum to the pool: {} = {}",
                text(&doc["allocated"]),
                text(&doc["pool"])
            ),
            detail: None,
        }
    } else {
        CheckLine {
            mark: Mark::Fail,
            text: format!(
                "Allocations do not sum to the pool: {} ≠ {}",
                text(&doc["allocated"]),
                text(&doc["pool"])
            ),
            detail: None,
        }
    }];
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default()
    };
    let pending = names(&doc["pending"]["members"]);
    if !pending.is_empty() {
        lines.push(CheckLine {
            mark: Mark::Warn,
            text: format!(
                "{} contribution(s) still pending approval are excluded from this allocation",
                text(&doc["pending"]["contributions"])
            ),
            detail: Some(pending.join(", ")),
        });
    }
    let zero = names(&doc["zero_patronage"]);
    if !zero.is_empty() {
        lines.push(CheckLine {
            mark: Mark::Warn,
            text: "Members whose approved contributions weigh 0 get nothing".into(),
            detail: Some(zero.join(", ")),
        });
    }
    blocks.push(Block::Checks(lines));
}

/// The recorded validation summary, verification checks and read-back proof of the run.
fn checks(blocks: &mut Vec<Block>, run: &RunRecord, limits: Limits) {
    blocks.push(Block::Heading("Verification".into()));
    let details = &run.details;
    let mut lines = Vec::new();
    let validation = &details["validation"];
    if validation.is_object() {
        let s = &validation["summary"];
        lines.push(CheckLine {
            mark: if validation["ok"] == true {
                Mark::Pass
            } else {
                Mark::Fail
            },
            text: format!(
                "Source validation {}: {} file(s), {} row(s): {} error(s), {} warning(s), {} note(s)",
                if validation["ok"] == true {
                    "passed"
                } else {
                    "failed"
                },
                text(&s["files"]),
                text(&s["rows"]),
                text(&s["errors"]),
                text(&s["warnings"]),
                text(&s["notes"]),
            ),
            detail: None,
        });
    }
    let verification = &details["verification"];
    for c in verification["checks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let preexisting = c["preexisting"] == true;
        let mark = match (c["status"].as_str(), preexisting) {
            (Some("pass"), _) => Mark::Pass,
            (Some("fail"), false) => Mark::Fail,
            _ => Mark::Warn,
        };
        let mut detail: Vec<String> = Vec::new();
        if let Some(m) = c["message"].as_str().filter(|m| !m.is_empty()) {
            detail.push(m.to_string());
        }
        if preexisting {
            detail.push("pre-existing: these rows failed before this run too".into());
        }
        let named: Vec<String> = c["named"]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        if mark != Mark::Pass && !named.is_empty() {
            let total = c["named_total"].as_u64().unwrap_or(0);
            let more = usize::try_from(total)
                .unwrap_or(usize::MAX)
                .saturating_sub(named.len());
            let mut who = named.join(", ");
            if more > 0 {
                who.push_str(&format!(" and {more} more"));
            }
            detail.push(who);
        }
        lines.push(CheckLine {
            mark,
            text: text(&c["title"]),
            detail: (!detail.is_empty()).then(|| detail.join(" — ")),
        });
    }
    for p in verification["proof"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let matches = p["matches"] == true;
        lines.push(CheckLine {
            mark: if matches { Mark::Pass } else { Mark::Fail },
            text: format!(
                "Read-back of {}: {} source rows, {} in the database, checksum {}",
                text(&p["table"]),
                text(&p["source_rows"]),
                text(&p["database_rows"]),
                if matches {
                    text(&p["database_checksum"])
                } else {
                    format!(
                        "{} ≠ source {}",
                        text(&p["database_checksum"]),
                        text(&p["source_checksum"])
                    )
                }
            ),
            detail: None,
        });
    }
    if verification.is_object() {
        let ok = verification["ok"] == true;
        lines.push(CheckLine {
            mark: if ok { Mark::Pass } else { Mark::Fail },
            text: if ok {
                "All verification checks passed".into()
            } else {
                "Some verification checks failed".into()
            },
            detail: None,
        });
    }
    if lines.is_empty() {
        blocks.push(Block::Paragraph(
            "This run recorded no verification (an allocation or a period close checks its own \
             figures, shown above; `habitat-migrate verify` checks the database at any time)."
                .into(),
        ));
    } else {
        blocks.push(Block::Checks(lines));
    }
    let diagnostics = validation["diagnostics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !diagnostics.is_empty() {
        let rows = diagnostics
            .iter()
            .take(limits.rows)
            .map(|d| {
                vec![
                    text(&d["severity"]).into(),
                    format!(
                        "{}:{}",
                        Path::new(&text(&d["file"]))
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        text(&d["line"])
                    )
                    .into(),
                    text(&d["rule"]).into(),
                    text(&d["message"]).into(),
                ]
            })
            .collect();
        let more = diagnostics.len().saturating_sub(limits.rows);
        blocks.push(Block::Paragraph(
            "What the source validation noted (warnings and notes do not stop a run):".into(),
        ));
        blocks.push(Block::Table(Table {
            columns: vec![
                Column::text("severity"),
                Column::text("where"),
                Column::text("rule"),
                Column::text("message"),
            ],
            rows,
            footer: None,
            note: (more > 0).then(|| {
                format!(
                    "{more} more — see `habitat-migrate runs show {}` with --format json.",
                    run.id
                )
            }),
        }));
    }
}

fn signed(m: Money) -> String {
    if m.is_negative() || m == Money::ZERO {
        m.to_string()
    } else {
        format!("+{m}")
    }
}

/// Every member's balance and tax basis reconciled now, differences flagged.
fn reconciliation(
    blocks: &mut Vec<Block>,
    store: &mut dyn Store,
    id: i64,
    newer_runs: bool,
    limits: Limits,
) -> Result<(), ReportError> {
    blocks.push(Block::Heading("Balance reconciliation".into()));
    let mut rows = Vec::new();
    let (mut members, mut differing, mut no_baseline) = (0usize, 0usize, Vec::new());
    store.for_each_member_totals(&mut |t| {
        members += 1;
        let lines = match balances::reconcile(&t, false) {
            Verdict::Reconciled(lines) => lines,
            Verdict::Differs(lines) => {
                differing += 1;
                lines
            }
            Verdict::NoBaseline => {
                no_baseline.push(t.email.clone());
                return Ok(());
            }
            Verdict::Unreadable => {
                differing += 1;
                if members <= limits.members {
                    rows.push(vec![
                        t.email.as_str().into(),
                        "balance".into(),
                        "".into(),
                        "".into(),
                        "".into(),
                        "".into(),
                        t.balance.to_string().into(),
                        Cell::flagged("amounts overflow"),
                    ]);
                }
                return Ok(());
            }
        };
        if members <= limits.members {
            for l in lines {
                let difference = if l.difference == Money::ZERO {
                    Cell::from(signed(l.difference))
                } else {
                    Cell::flagged(signed(l.difference))
                };
                rows.push(vec![
                    l.member.as_str().into(),
                    l.measure.replace('_', " ").into(),
                    l.opening.to_string().into(),
                    l.contributions.to_string().into(),
                    l.allocations.to_string().into(),
                    l.expected.to_string().into(),
                    l.actual.to_string().into(),
                    difference,
                ]);
            }
        }
        Ok(())
    })?;
    let mut lines = vec![CheckLine {
        mark: if differing == 0 {
            Mark::Pass
        } else {
            Mark::Fail
        },
        text: if differing == 0 {
            format!("All {members} capital account(s) with an opening balance reconcile")
        } else {
            format!(
                "{differing} of {members} capital account(s) differ from their contributions (highlighted)"
            )
        },
        detail: None,
    }];
    if !no_baseline.is_empty() {
        lines.push(CheckLine {
            mark: Mark::Warn,
            text: format!(
                "{} account(s) have no opening balance recorded by habitat-migrate and cannot be reconciled",
                no_baseline.len()
            ),
            detail: Some(no_baseline.iter().take(limits.rows).cloned().collect::<Vec<_>>().join(", ")),
        });
    }
    blocks.push(Block::Checks(lines));
    let more = members.saturating_sub(limits.members);
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("member"),
            Column::text("measure"),
            Column::figure("opening"),
            Column::figure("contributions"),
            Column::figure("allocations"),
            Column::figure("expected"),
            Column::figure("actual"),
            Column::figure("difference"),
        ],
        rows,
        footer: None,
        note: Some(format!(
            "expected = opening balance (what the import found unexplained by the records) + approved capital and property contributions + distributed allocations; labor earns patronage and is not capital. Computed from the database when this report was made{}.{}",
            if newer_runs {
                format!(", which later runs than run {id} may have changed")
            } else {
                String::new()
            },
            if more > 0 {
                format!(" The first {} members are listed, and {more} more — `habitat-migrate verify --verbose` lists every one.", limits.members)
            } else {
                String::new()
            }
        )),
    }));
    Ok(())
}

/// Accounts whose book balance is not their tax basis, with the account's notes.
fn tax_basis(
    blocks: &mut Vec<Block>,
    store: &mut dyn Store,
    limits: Limits,
) -> Result<(), ReportError> {
    blocks.push(Block::Heading("Book balance ≠ tax basis".into()));
    let mut accounts = Vec::new();
    store.for_each_account(&mut |a| {
        if a.balance != a.tax_basis {
            accounts.push(a);
        }
        Ok(())
    })?;
    if accounts.is_empty() {
        blocks.push(Block::Paragraph(
            "Every capital account's book balance equals its tax basis.".into(),
        ));
        return Ok(());
    }
    let ids: Vec<Uuid> = accounts.iter().map(|a| a.member_id).collect();
    let emails: HashMap<Uuid, String> = store
        .members_by_id(&ids)?
        .into_iter()
        .map(|m| (m.id, m.email))
        .collect();
    let mut rows: Vec<(String, Vec<Cell>)> = accounts
        .iter()
        .map(|a| {
            let email = emails
                .get(&a.member_id)
                .cloned()
                .unwrap_or_else(|| format!("(member {} not found)", a.member_id));
            let difference = a
                .balance
                .checked_sub(a.tax_basis)
                .map_or_else(|| "overflow".to_string(), signed);
            let cells = vec![
                email.as_str().into(),
                a.balance.to_string().into(),
                a.tax_basis.to_string().into(),
                difference.into(),
                a.notes.as_deref().unwrap_or("(no note)").into(),
            ];
            (email, cells)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let more = rows.len().saturating_sub(limits.rows);
    blocks.push(Block::Table(Table {
        columns: vec![
            Column::text("member"),
            Column::figure("book balance"),
            Column::figure("tax basis"),
            Column::figure("balance − basis"),
            Column::text("notes"),
        ],
        rows: rows.into_iter().take(limits.rows).map(|(_, r)| r).collect(),
        footer: None,
        note: Some(format!(
            "A difference is allowed (e.g. property contributed at a value above its tax basis) but needs a note. As the database holds them when this report was made.{}",
            if more > 0 {
                format!(" {more} more accounts differ and are not listed.")
            } else {
                String::new()
            }
        )),
    }));
    Ok(())
}

/// The backup taken before the run, checked against its manifest now.
fn backup(blocks: &mut Vec<Block>, run: &RunRecord) {
    blocks.push(Block::Heading("Backup".into()));
    let Some(file) = &run.backup_file else {
        let why = match run.details["backup_skipped"].as_str() {
            Some("nothing to write") => {
                "No backup was needed: this run wrote nothing to the Habitat tables.".to_string()
            }
            Some(why) => format!("No backup was written: {why}."),
            None => "No backup was recorded for this run.".to_string(),
        };
        blocks.push(Block::Paragraph(why));
        return;
    };
    let mut facts = vec![("File".to_string(), file.clone())];
    let line = match crate::backup::check(Path::new(file)) {
        Ok(manifest) => {
            facts.push(("SHA-256".to_string(), manifest.file_sha256.clone()));
            facts.push((
                "Kind".to_string(),
                match manifest.kind {
                    crate::store::BackupKind::Snapshot => "snapshot of the tables".to_string(),
                    crate::store::BackupKind::Undo => "undo script of this run".to_string(),
                },
            ));
            facts.push(("Created".to_string(), manifest.created_at.clone()));
            CheckLine {
                mark: Mark::Pass,
                text: "The backup file is there and matches the SHA-256 of its manifest".into(),
                detail: Some(format!("restore with `habitat-migrate restore {file}`")),
            }
        }
        Err(e) => CheckLine {
            mark: Mark::Fail,
            text: "The backup could not be checked where this report was made".into(),
            detail: Some(e.to_string()),
        },
    };
    blocks.push(Block::Facts(facts));
    blocks.push(Block::Checks(vec![line]));
}
