//! Habitat's period close, as far as the records go: closing an allocation period, and allocating
//! a pool over its approved contributions — previewed, then committed.
//!
//! The arithmetic is [`rule`] (with [`weights`]), written once in Rust above both backends; this
//! module owns the operations around it, callable from the CLI or anything else:
//!
//! - [`preview`] reads the period, its approved contributions summed per member and type, and any
//!   allocations already stored, and computes; it writes nothing (no transaction, no lock).
//! - [`commit`] does the same inside one write transaction under the writer lock, only on a
//!   `closed` period (Habitat allocates after the close), and writes the `allocations` rows with
//!   status `calculated`. A commit identical to what is stored changes nothing; a different one
//!   is refused while allocations exist unless `replace` is set, and always once any of them is
//!   `distributed` (it is in a capital account). The run is recorded with the whole calculation
//!   (inputs and rows) in its details, so the report of that run shows how every cent was found.
//! - [`close_period`] sets a period's status to `closed` and its `closed_at`, refusing while
//!   contributions of the period are pending unless `allow_pending` is set, as Habitat's pre-close
//!   review does.
//!
//! A refused or failed commit or close is rolled back whole and then recorded as a failed run,
//! as an import is, so the history shows attempts too.

pub mod rule;
pub mod weights;

use jiff::Timestamp;
use uuid::Uuid;

use crate::domain::{AllocationStatus, PeriodStatus, format_instant};
use crate::model::{
    AllocationRow, AllocationWrites, Change, Outcome, PeriodStanding, RunRecord, StoredAllocation,
};
use crate::money::Money;
use crate::store::{Store, StoreError, TableCounts};

pub use rule::{Calculation, RuleError, Share};
pub use weights::{Weight, WeightError, Weights, WeightsError};

/// What to allocate: a period by name, a pool and the weights of the contribution types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub period: String,
    pub pool: Money,
    pub weights: Weights,
}

impl Request {
    /// The command as the run record shows it, with every input spelt out.
    fn command(&self, replace: bool) -> String {
        format!(
            "allocate --period {:?} --pool {} --weights {} --commit{}",
            self.period,
            self.pool,
            self.weights,
            if replace { " --replace" } else { "" }
        )
    }
}

/// The allocations already stored for the period, compared with a calculation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existing {
    None,
    /// Exactly this calculation's rows: the same members, amounts and scores.
    Same {
        count: usize,
    },
    Different {
        count: usize,
        total: Money,
        distributed: usize,
    },
}

/// An allocation: the period, the calculation, what is stored, and what a commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub standing: PeriodStanding,
    pub calculation: Calculation,
    pub existing: Existing,
    /// `None` for a preview.
    pub committed: Option<Committed>,
}

/// What a commit wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    pub run_id: i64,
    pub counts: TableCounts,
}

/// Why an allocation or a close cannot go ahead. All but `Store` are about the data (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    #[error("no allocation period named {name:?}{}", known_periods(.known))]
    NoPeriod { name: String, known: Vec<String> },
    #[error(
        "{period} has no approved contributions, so there is no patronage to divide the pool by: nothing to allocate"
    )]
    NoApprovedContributions {
        period: String,
        pending: u64,
        pending_members: Vec<String>,
    },
    #[error("{period}: {source}")]
    Rule {
        period: String,
        weights: Weights,
        source: RuleError,
    },
    #[error(
        "{period} is {status}: allocations are committed only on a closed period (Habitat allocates after the close)"
    )]
    NotClosed {
        period: String,
        status: PeriodStatus,
    },
    #[error(
        "{period} already has {count} allocation(s), totalling {total}, that differ from this calculation"
    )]
    AlreadyAllocated {
        period: String,
        count: usize,
        total: Money,
    },
    #[error(
        "{period} has {distributed} distributed allocation(s) (of {count}): they are in the members' capital accounts and are never replaced"
    )]
    Distributed {
        period: String,
        count: usize,
        distributed: usize,
    },
    #[error(
        "{period} has {pending} contribution(s) still pending approval ({}); closing now would leave them out of this period's allocation",
        some(.members)
    )]
    Pending {
        period: String,
        pending: u64,
        members: Vec<String>,
    },
    #[error("{period} is archived: an archived period is not closed again")]
    Archived { period: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AllocateError {
    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            AllocateError::NoPeriod { .. } => {
                "`habitat-migrate period list` shows the periods; the name is compared exactly"
                    .into()
            }
            AllocateError::NoApprovedContributions {
                pending,
                pending_members,
                ..
            } if *pending > 0 => format!(
                "{pending} contribution(s) of the period are pending ({}): only approved contributions earn patronage",
                some(pending_members)
            ),
            AllocateError::NoApprovedContributions { .. } => {
                "import the period's contributions (with status approved) before allocating".into()
            }
            AllocateError::Rule {
                source: RuleError::NoPatronage,
                weights,
                ..
            } => format!(
                "with --weights {weights} every approved contribution weighs 0: give a type the period has a weight above 0"
            ),
            AllocateError::Rule { .. } => return None,
            AllocateError::NotClosed { period, .. } => format!(
                "close it first with `habitat-migrate period close {period:?}`; without --commit the allocation is a preview, which works on an open period"
            ),
            AllocateError::AlreadyAllocated { .. } => {
                "run without --commit to see both; add --replace to replace the stored allocations (their old values are kept in the change history)".into()
            }
            AllocateError::Distributed { .. } => {
                "a correction of distributed allocations is an entry in Habitat, not a new allocation"
                    .into()
            }
            AllocateError::Pending { period, .. } => format!(
                "approve or reject them first, or run `habitat-migrate period close {period:?} --allow-pending` to leave them out"
            ),
            AllocateError::Archived { .. } | AllocateError::Store(_) => return None,
        })
    }
}

fn known_periods(known: &[String]) -> String {
    if known.is_empty() {
        " (the database has no periods)".into()
    } else {
        format!(" (periods: {})", some(known))
    }
}

/// The first five of a list, then how many more.
fn some(list: &[String]) -> String {
    let mut text = list
        .iter()
        .take(5)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > 5 {
        text.push_str(&format!(" and {} more", list.len() - 5));
    }
    text
}

/// The allocation as it would be committed now; writes nothing.
pub fn preview(store: &mut dyn Store, request: &Request) -> Result<Allocation, AllocateError> {
    calculate(store, request).map(|(allocation, _)| allocation)
}

/// Computes and writes the allocation in one transaction, recorded as a run. See the module
/// documentation for when it refuses.
pub fn commit(
    store: &mut dyn Store,
    request: &Request,
    replace: bool,
) -> Result<Allocation, AllocateError> {
    let mut run = RunRecord::start(request.command(replace), store.url().redacted());
    in_transaction(store, &mut run, |store, run| {
        commit_in_transaction(store, request, replace, run)
    })
}

fn calculate(
    store: &mut dyn Store,
    request: &Request,
) -> Result<(Allocation, Vec<StoredAllocation>), AllocateError> {
    let standing = standing(store, &request.period)?;
    let name = standing.period.name.clone();
    let members = store.approved_patronage(standing.period.id)?;
    if members.is_empty() {
        return Err(AllocateError::NoApprovedContributions {
            period: name,
            pending: standing.pending,
            pending_members: standing.pending_members,
        });
    }
    let calculation =
        rule::allocate(request.pool, &request.weights, &members).map_err(|source| {
            AllocateError::Rule {
                period: name,
                weights: request.weights,
                source,
            }
        })?;
    let stored = store.allocations(standing.period.id)?;
    let existing = compare(&calculation, &stored);
    Ok((
        Allocation {
            standing,
            calculation,
            existing,
            committed: None,
        },
        stored,
    ))
}

fn standing(store: &mut dyn Store, name: &str) -> Result<PeriodStanding, AllocateError> {
    match store.period_standing(name)? {
        Some(standing) => Ok(standing),
        None => Err(AllocateError::NoPeriod {
            name: name.to_string(),
            known: store.periods()?.into_iter().map(|p| p.name).collect(),
        }),
    }
}

fn compare(calculation: &Calculation, stored: &[StoredAllocation]) -> Existing {
    if stored.is_empty() {
        return Existing::None;
    }
    let same = stored.len() == calculation.shares.len()
        && calculation.shares.iter().all(|share| {
            stored.iter().any(|s| {
                s.member_id == share.member_id
                    && s.amount == share.amount
                    && s.patronage_score == share.patronage_score
            })
        });
    if same {
        return Existing::Same {
            count: stored.len(),
        };
    }
    Existing::Different {
        count: stored.len(),
        total: stored
            .iter()
            .try_fold(Money::ZERO, |sum, s| sum.checked_add(s.amount))
            .unwrap_or(Money::ZERO),
        distributed: stored
            .iter()
            .filter(|s| s.status == AllocationStatus::Distributed)
            .count(),
    }
}

fn commit_in_transaction(
    store: &mut dyn Store,
    request: &Request,
    replace: bool,
    run: &mut RunRecord,
) -> Result<Allocation, AllocateError> {
    let (mut allocation, stored) = calculate(store, request)?;
    let period = &allocation.standing.period;
    if period.status != PeriodStatus::Closed {
        return Err(AllocateError::NotClosed {
            period: period.name.clone(),
            status: period.status,
        });
    }
    let writes = match allocation.existing {
        Existing::None | Existing::Same { .. } => writes(&allocation.calculation, &stored),
        Existing::Different {
            count, distributed, ..
        } if distributed > 0 => {
            return Err(AllocateError::Distributed {
                period: period.name.clone(),
                count,
                distributed,
            });
        }
        Existing::Different { count, total, .. } if !replace => {
            return Err(AllocateError::AlreadyAllocated {
                period: period.name.clone(),
                count,
                total,
            });
        }
        Existing::Different { .. } => writes(&allocation.calculation, &stored),
    };
    run.id = store.insert_run(run)?;
    store.record_changes(run.id, &history(&period.name, &stored, &writes))?;
    store.write_allocations(period.id, &writes)?;
    let counts = TableCounts {
        inserted: writes.insert.len() as u64,
        updated: writes.update.len() as u64,
        unchanged: (allocation.calculation.shares.len() - writes.insert.len() - writes.update.len())
            as u64,
        deleted: writes.delete.len() as u64,
    };
    allocation.committed = Some(Committed {
        run_id: run.id,
        counts,
    });
    run.counts = serde_json::json!({ "allocations": counts });
    run.details = crate::report::allocation::allocation_json(&allocation);
    run.finished_at = Some(Timestamp::now());
    store.finish_run(run)?;
    Ok(allocation)
}

/// The rows to insert, update and delete to make the stored allocations this calculation's.
fn writes(calculation: &Calculation, stored: &[StoredAllocation]) -> AllocationWrites {
    let mut out = AllocationWrites::default();
    for share in &calculation.shares {
        let row = |id| AllocationRow {
            id,
            member_id: share.member_id,
            amount: share.amount,
            patronage_score: share.patronage_score,
        };
        match stored.iter().find(|s| s.member_id == share.member_id) {
            None => out.insert.push(row(Uuid::now_v7())),
            Some(s) if s.amount != share.amount || s.patronage_score != share.patronage_score => {
                out.update.push(row(s.id));
            }
            Some(_) => {}
        }
    }
    out.delete = stored
        .iter()
        .filter(|s| {
            !calculation
                .shares
                .iter()
                .any(|share| share.member_id == s.member_id)
        })
        .map(|s| s.id)
        .collect();
    out
}

/// The change history of a replacement: each changed amount and score, and each deleted row's
/// whole before-image. (New rows are the run's own, as in an import.)
fn history(period: &str, stored: &[StoredAllocation], writes: &AllocationWrites) -> Vec<Change> {
    let key = |s: &StoredAllocation| format!("{} {period}", s.email);
    let mut changes = Vec::new();
    for new in &writes.update {
        let Some(old) = stored.iter().find(|s| s.id == new.id) else {
            continue;
        };
        if old.amount != new.amount {
            changes.push(Change {
                table: "allocations",
                row_id: old.id,
                row_key: key(old),
                column: "amount",
                before: Some(old.amount.to_string()),
                after: Some(new.amount.to_string()),
            });
        }
        if old.patronage_score != new.patronage_score {
            changes.push(Change {
                table: "allocations",
                row_id: old.id,
                row_key: key(old),
                column: "patronage_score",
                before: Some(old.patronage_score.to_string()),
                after: Some(new.patronage_score.to_string()),
            });
        }
    }
    for old in stored.iter().filter(|s| writes.delete.contains(&s.id)) {
        let image = serde_json::json!({
            "id": old.id.to_string(),
            "member": old.email,
            "period": period,
            "amount": old.amount.to_string(),
            "patronage_score": old.patronage_score.to_string(),
            "status": old.status.as_str(),
        });
        changes.push(Change {
            table: "allocations",
            row_id: old.id,
            row_key: key(old),
            column: "(deleted row)",
            before: Some(image.to_string()),
            after: None,
        });
    }
    changes
}

/// What `period close` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closing {
    /// The period as it was before (its status, pending contributions).
    pub standing: PeriodStanding,
    /// `None` when the period was already closed: nothing was written.
    pub closed: Option<Closed>,
    pub allow_pending: bool,
}

/// A close that was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    pub at: Timestamp,
    pub run_id: i64,
}

/// Sets the period's status to `closed` and its `closed_at`, in one transaction recorded as a
/// run. A period already closed is left as it is.
pub fn close_period(
    store: &mut dyn Store,
    name: &str,
    allow_pending: bool,
) -> Result<Closing, AllocateError> {
    let command = format!(
        "period close {name:?}{}",
        if allow_pending {
            " --allow-pending"
        } else {
            ""
        }
    );
    let mut run = RunRecord::start(command, store.url().redacted());
    in_transaction(store, &mut run, |store, run| {
        let standing = standing(store, name)?;
        let period = &standing.period;
        match period.status {
            PeriodStatus::Closed => {
                return Ok(Closing {
                    standing,
                    closed: None,
                    allow_pending,
                });
            }
            PeriodStatus::Archived => {
                return Err(AllocateError::Archived {
                    period: period.name.clone(),
                });
            }
            PeriodStatus::Open => {}
        }
        if standing.pending > 0 && !allow_pending {
            return Err(AllocateError::Pending {
                period: period.name.clone(),
                pending: standing.pending,
                members: standing.pending_members.clone(),
            });
        }
        // To the microsecond, which is what PostgreSQL keeps: both backends store the same.
        let now = Timestamp::now();
        let at = Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
        run.id = store.insert_run(run)?;
        let key = period.name.clone();
        store.record_changes(
            run.id,
            &[
                Change {
                    table: "allocation_periods",
                    row_id: period.id,
                    row_key: key.clone(),
                    column: "status",
                    before: Some(period.status.to_string()),
                    after: Some(PeriodStatus::Closed.to_string()),
                },
                Change {
                    table: "allocation_periods",
                    row_id: period.id,
                    row_key: key,
                    column: "closed_at",
                    before: standing.closed_at.map(format_instant),
                    after: Some(format_instant(at)),
                },
            ],
        )?;
        store.close_period(period.id, at)?;
        let closing = Closing {
            closed: Some(Closed { at, run_id: run.id }),
            standing,
            allow_pending,
        };
        run.counts = serde_json::json!({"allocation_periods": TableCounts { updated: 1, ..TableCounts::default() }});
        run.details = crate::report::allocation::closing_json(&closing);
        run.finished_at = Some(at);
        store.finish_run(run)?;
        Ok(closing)
    })
}

/// Runs `work` in one write transaction: commits what it returns, or rolls back and records the
/// attempt as a failed run (best effort: a lost connection cannot take the record).
fn in_transaction<T>(
    store: &mut dyn Store,
    run: &mut RunRecord,
    work: impl FnOnce(&mut dyn Store, &mut RunRecord) -> Result<T, AllocateError>,
) -> Result<T, AllocateError> {
    store.begin_write()?;
    match work(store, run) {
        Ok(done) => {
            store.commit()?;
            Ok(done)
        }
        Err(e) => {
            let _ = store.rollback();
            run.id = 0;
            run.outcome = Outcome::Failed;
            run.message = Some(e.to_string());
            run.finished_at = Some(Timestamp::now());
            run.counts = serde_json::json!({});
            let _ = record_failure(store, run);
            Err(e)
        }
    }
}

fn record_failure(store: &mut dyn Store, run: &RunRecord) -> Result<(), StoreError> {
    store.begin_write()?;
    match store.insert_run(run) {
        Ok(_) => store.commit(),
        Err(e) => {
            let _ = store.rollback();
            Err(e)
        }
    }
}
