//! Rendering of `allocate` and `period close`: the versioned JSON documents, and the text a
//! treasurer reads.
//!
//! The calculation table is rendered from the JSON document, not from the Rust values, so that
//! the preview, the commit and `runs show` of the run that committed it (whose details hold that
//! document) print the same table, and an old run's record prints as it was computed.

use std::fmt::Write;

use serde_json::{Value, json};

use super::columns;
use crate::allocate::{Allocation, Closing, Existing};
use crate::domain::{ContributionType, PeriodStatus, format_instant};

pub const ALLOCATION_FORMAT: &str = "habitat-migrate/allocation";
pub const ALLOCATION_VERSION: u32 = 1;
pub const PERIOD_CLOSE_FORMAT: &str = "habitat-migrate/period-close";
pub const PERIOD_CLOSE_VERSION: u32 = 1;

/// The allocation as one JSON document: inputs, every member's line, the check, what is stored,
/// and what a commit did. A committed run keeps this document as its details.
pub fn allocation_json(a: &Allocation) -> Value {
    let c = &a.calculation;
    let by_type = |values: &dyn Fn(usize) -> Value| {
        let mut map = serde_json::Map::new();
        for (i, t) in ContributionType::ALL.iter().enumerate() {
            map.insert(t.as_str().into(), values(i));
        }
        Value::Object(map)
    };
    let members: Vec<Value> = c
        .shares
        .iter()
        .map(|s| {
            json!({
                "member": s.email,
                "display_name": s.display_name,
                "approved": by_type(&|i| json!(s.approved[i])),
                "weighted": by_type(&|i| json!(s.weighted[i])),
                "weighted_total": s.weighted_total,
                "patronage_score": s.patronage_score,
                "exact_share": s.exact_share(c.total_weighted),
                "leftover_cent": s.leftover_cent,
                "amount": s.amount,
            })
        })
        .collect();
    let allocated = c.allocated();
    let existing = match a.existing {
        Existing::None => json!({"state": "none", "allocations": 0}),
        Existing::Same { count } => json!({"state": "same", "allocations": count}),
        Existing::Different {
            count,
            total,
            distributed,
        } => json!({"state": "different", "allocations": count, "total": total,
                    "distributed": distributed}),
    };
    json!({
        "format": ALLOCATION_FORMAT,
        "version": ALLOCATION_VERSION,
        "ok": true,
        "period": a.standing.period.name,
        "period_status": a.standing.period.status,
        "pool": c.pool,
        "weights": c.weights,
        "committed": a.committed.is_some(),
        "run_id": a.committed.map(|c| c.run_id),
        "counts": a.committed.map(|c| c.counts),
        "total_weighted": c.total_weighted,
        "allocated": allocated,
        "sum_equals_pool": allocated == Some(c.pool),
        "leftover_cents": c.leftover_cents,
        "members": members,
        "zero_patronage": c.zero_patronage,
        "pending": {"contributions": a.standing.pending, "members": a.standing.pending_members},
        "existing": existing,
    })
}

/// The calculation of an allocation document: the inputs, a line per member, the total and the
/// check that the amounts sum to the pool. `None` if `doc` is not an allocation document.
pub fn calculation_human(doc: &Value) -> Option<String> {
    if doc["format"] != ALLOCATION_FORMAT {
        return None;
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let weights = &doc["weights"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Allocation of {} ({}): pool {}, weights labor={}, capital={}, property={}",
        text(&doc["period"]),
        text(&doc["period_status"]),
        text(&doc["pool"]),
        text(&weights["labor"]),
        text(&weights["capital"]),
        text(&weights["property"]),
    );
    let types = ContributionType::ALL;
    let header: Vec<String> = std::iter::once("member".to_string())
        .chain(
            types
                .iter()
                .map(|t| format!("{t}×{}", text(&weights[t.as_str()]))),
        )
        .chain(["weighted", "patronage_score", "amount"].map(String::from))
        .collect();
    let empty = Vec::new();
    let members = doc["members"].as_array().unwrap_or(&empty);
    let mut rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            std::iter::once(text(&m["member"]))
                .chain(types.iter().map(|t| text(&m["weighted"][t.as_str()])))
                .chain([
                    text(&m["weighted_total"]),
                    text(&m["patronage_score"]),
                    text(&m["amount"]),
                ])
                .collect()
        })
        .collect();
    let mut total = vec![String::new(); header.len()];
    total[0] = "total".into();
    total[4] = text(&doc["total_weighted"]);
    total[6] = text(&doc["allocated"]);
    rows.push(total);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out.push_str(&columns(&header, &rows, &[1, 2, 3, 4, 5, 6]));
    if doc["sum_equals_pool"] == true {
        let _ = writeln!(
            out,
            "✓ Allocations sum to the pool: {} = {}",
            text(&doc["allocated"]),
            text(&doc["pool"])
        );
    } else {
        let _ = writeln!(
            out,
            "✗ Allocations do not sum to the pool: {} ≠ {}",
            text(&doc["allocated"]),
            text(&doc["pool"])
        );
    }
    let leftover: Vec<String> = members
        .iter()
        .filter(|m| m["leftover_cent"] == true)
        .map(|m| text(&m["member"]))
        .collect();
    if !leftover.is_empty() {
        let _ = writeln!(
            out,
            "  {} left over after rounding each share down went one each to the largest remainders: {}",
            super::plural(leftover.len(), "cent", "cents"),
            leftover.join(", ")
        );
    }
    if let Some(zero) = doc["zero_patronage"].as_array().filter(|z| !z.is_empty()) {
        let names: Vec<String> = zero.iter().map(text).collect();
        let _ = writeln!(
            out,
            "  {} with approved contributions of weight 0 get nothing: {}",
            super::plural(names.len(), "member", "members"),
            names.join(", ")
        );
    }
    let pending = doc["pending"]["contributions"].as_u64().unwrap_or(0);
    if pending > 0 {
        let names: Vec<String> = doc["pending"]["members"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(text)
            .collect();
        let _ = writeln!(
            out,
            "! {} still pending approval {} excluded from this period's allocation: {}",
            super::plural(
                usize::try_from(pending).unwrap_or(usize::MAX),
                "contribution",
                "contributions"
            ),
            if pending == 1 { "is" } else { "are" },
            names.join(", ")
        );
    }
    Some(out)
}

/// The allocation for a person: the calculation, then what is stored and what happened.
pub fn allocation_human(a: &Allocation) -> String {
    let doc = allocation_json(a);
    let mut out = calculation_human(&doc).unwrap_or_default();
    let period = &a.standing.period;
    let name = &period.name;
    match a.committed {
        None => {
            match a.existing {
                Existing::None => {}
                Existing::Same { count } => {
                    let _ = writeln!(
                        out,
                        "✓ These are the {} already committed for {name}: --commit would change nothing",
                        super::plural(count, "allocation", "allocations")
                    );
                }
                Existing::Different {
                    count,
                    total,
                    distributed,
                } => {
                    let _ = write!(
                        out,
                        "! {name} already has {} (total {total}) that differ from these: ",
                        super::plural(count, "allocation", "allocations")
                    );
                    let _ = writeln!(
                        out,
                        "{}",
                        if distributed > 0 {
                            "some are distributed, so they cannot be replaced"
                        } else {
                            "--commit --replace would replace them"
                        }
                    );
                }
            }
            if period.status != PeriodStatus::Closed {
                let _ = writeln!(
                    out,
                    "! Draft: {name} is {}; close it (`habitat-migrate period close {name:?}`) before --commit",
                    period.status
                );
            }
            let _ = writeln!(
                out,
                "Preview only: nothing was written (add --commit to record these allocations)"
            );
        }
        Some(committed) => {
            let counts = committed.counts;
            if counts.inserted + counts.updated + counts.deleted == 0 {
                let _ = writeln!(
                    out,
                    "✓ Nothing changed: {name} already holds exactly these {}",
                    super::plural(
                        usize::try_from(counts.unchanged).unwrap_or(usize::MAX),
                        "allocation",
                        "allocations"
                    )
                );
            } else {
                let _ = writeln!(
                    out,
                    "✓ Allocations committed for {name} in one transaction (status calculated): {} inserted, {} updated, {} unchanged, {} deleted",
                    counts.inserted, counts.updated, counts.unchanged, counts.deleted
                );
            }
            let _ = writeln!(
                out,
                "✓ Run {} recorded (see `habitat-migrate runs show {}`)",
                committed.run_id, committed.run_id
            );
        }
    }
    out
}

/// `period close` as one JSON document (also a close run's details).
pub fn closing_json(c: &Closing) -> Value {
    json!({
        "format": PERIOD_CLOSE_FORMAT,
        "version": PERIOD_CLOSE_VERSION,
        "ok": true,
        "period": c.standing.period.name,
        "already_closed": c.closed.is_none(),
        "closed_at": c.closed.map(|d| format_instant(d.at))
            .or_else(|| c.standing.closed_at.map(format_instant)),
        "run_id": c.closed.map(|d| d.run_id),
        "approved_contributions": c.standing.approved,
        "pending": {"contributions": c.standing.pending, "members": c.standing.pending_members},
        "allow_pending": c.allow_pending,
    })
}

pub fn closing_human(c: &Closing) -> String {
    let name = &c.standing.period.name;
    let mut out = String::new();
    match c.closed {
        None => {
            let since = c.standing.closed_at.map_or_else(
                || "closed_at not recorded".to_string(),
                |at| format!("since {}", format_instant(at)),
            );
            let _ = writeln!(out, "✓ {name} is already closed ({since}); nothing changed");
        }
        Some(closed) => {
            let _ = writeln!(
                out,
                "✓ Closed {name} at {} ({})",
                format_instant(closed.at),
                super::plural(
                    usize::try_from(c.standing.approved).unwrap_or(usize::MAX),
                    "approved contribution",
                    "approved contributions"
                )
            );
            if c.standing.pending > 0 {
                let _ = writeln!(
                    out,
                    "! {} still pending approval {} left out of this period's allocation (--allow-pending): {}",
                    super::plural(
                        usize::try_from(c.standing.pending).unwrap_or(usize::MAX),
                        "contribution",
                        "contributions"
                    ),
                    if c.standing.pending == 1 { "is" } else { "are" },
                    c.standing.pending_members.join(", ")
                );
            }
            let _ = write!(out, "✓ Run {} recorded", closed.run_id);
            if c.standing.approved > 0 {
                let _ = write!(
                    out,
                    "; next: `habitat-migrate allocate --period {name:?} --pool AMOUNT`"
                );
            }
            out.push('\n');
        }
    }
    out
}
