//! `habitat-migrate gen`: the synthetic bundle is deterministic (the same seed gives byte-identical
//! files, another seed different ones), has the promised shape (one capital account and ten
//! contributions per member, example.org people), and validates clean.

use crate::common;
use crate::harness::{Test, tests};
use std::fs;
use std::path::Path;

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            same_seed_gives_byte_identical_files_and_another_seed_does_not,
            bundle_has_the_promised_shape,
            generated_bundle_validates_clean,
        ],
    }
}

fn generate(dir: &Path, members: u64, seed: u64) {
    common::bin()
        .args([
            "gen",
            "--members",
            &members.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(dir)
        .assert()
        .success();
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).expect("generated file is readable")
}

const FILES: [&str; 4] = [
    "members.csv",
    "capital_accounts.csv",
    "contributions.csv",
    "periods.csv",
];

fn same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    generate(&a, 150, 7);
    generate(&b, 150, 7);
    generate(&c, 150, 8);
    for name in FILES {
        assert_eq!(
            read(&a, name),
            read(&b, name),
            "{name} differs for the same seed"
        );
    }
    assert_ne!(read(&a, "members.csv"), read(&c, "members.csv"));
    assert_ne!(read(&a, "contributions.csv"), read(&c, "contributions.csv"));
}

fn bundle_has_the_promised_shape() {
    let tmp = tempfile::tempdir().expect("tempdir");
    generate(tmp.path(), 40, 42);
    let lines = |name: &str| {
        String::from_utf8(read(tmp.path(), name))
            .expect("utf-8")
            .lines()
            .count()
            - 1
    };
    assert_eq!(lines("members.csv"), 40);
    assert_eq!(lines("capital_accounts.csv"), 40);
    assert_eq!(lines("contributions.csv"), 400);
    let members = String::from_utf8(read(tmp.path(), "members.csv")).expect("utf-8");
    assert!(members.lines().skip(1).all(|l| {
        l.split(',')
            .next()
            .is_some_and(|e| e.ends_with("@example.org"))
    }));
}

fn generated_bundle_validates_clean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bundle");
    generate(&dir, 300, 3);
    let out = common::validate_bundle(tmp.path(), &dir, "contributions.csv");
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["summary"]["errors"], 0);
    assert_eq!(report["summary"]["warnings"], 0);
    assert_eq!(report["summary"]["rows"], 300 + 300 + 3000 + 5);
    assert!(!tmp.path().join("none.db").exists());
}
