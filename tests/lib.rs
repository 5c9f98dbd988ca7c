//! The integration tests: one binary, one module per area, run by the harness in `harness.rs`.
//!
//! Each module lists its tests in `pub(crate) fn tests()`, with what each needs (nothing beyond
//! the binary and SQLite, a PostgreSQL server, or PostgreSQL's server binaries). A test whose
//! need is missing is listed as ignored, so the runner counts it as skipped — except under
//! `CI=true`, where it runs and fails. Test names are module paths, e.g.
//! `conformance::postgres::import_examples_exact`; `cargo nextest run -E 'test(/^conformance::/)'`
//! or `cargo test --test integration -- conformance::` pick a module.

mod common;
mod harness;

mod allocation;
mod annotate;
mod backup_verify;
mod cli;
mod conformance;
mod container;
mod generate;
mod hardening;
mod hostile_input;
mod production;
mod properties;
mod report;
mod schema_postgres;
mod schema_sqlite;
mod store_conformance;
mod tls;
mod validate_rules;
mod web;
mod workbook;

fn main() -> std::process::ExitCode {
    harness::run(
        [
            harness::own_tests(),
            allocation::tests(),
            annotate::tests(),
            backup_verify::tests(),
            cli::tests(),
            conformance::tests(),
            container::tests(),
            generate::tests(),
            hardening::tests(),
            hostile_input::tests(),
            production::tests(),
            properties::tests(),
            report::tests(),
            schema_postgres::tests(),
            schema_sqlite::tests(),
            store_conformance::tests(),
            tls::tests(),
            validate_rules::tests(),
            web::tests(),
            workbook::tests(),
        ]
        .concat(),
    )
}
