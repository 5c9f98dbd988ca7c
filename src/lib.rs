//! habitat-migrate: move a cooperative's records into the Habitat patronage accounting database,
//! exactly, once, and provably.
//!
//! The pipeline is the architecture, and data flows one way through it:
//!
//! ```text
//! source ─► validate ─► plan ─► store (PostgreSQL | SQLite) ─► verify ─► report
//!              │                   ▲
//!              └── diagnostic      └── backup, runlog
//! ```
//!
//! - [`source`] reads CSV / JSON / JSON-lines files and streams records with editor line numbers;
//!   [`annotate`] writes copies of files with problems, annotated, for the fix-and-rerun loop;
//! - [`validate`] applies the rules of SPEC §3 and yields typed rows ([`domain`], [`money`]);
//! - [`plan`] classifies rows as insert / update / unchanged and keys contributions;
//! - [`store`] is the one database abstraction with a PostgreSQL and a SQLite backend;
//! - [`import`] runs a whole import in one transaction; [`verify`] proves what landed;
//! - [`allocate`] closes a period and allocates a pool over its approved contributions;
//! - [`backup`] takes and restores backups; [`runlog`] writes the JSON-lines log;
//! - [`report`] renders results for people and machines; [`cli`] maps them to exit codes, and
//!   [`manual`] makes the man page and shell completions from the same definitions;
//! - [`user`] names who ran the tool, for the run record;
//! - [`web`] serves the same pipeline as a local web page (`serve`).

pub mod allocate;
pub mod annotate;
pub mod backup;
pub mod balances;
pub mod checksum;
pub mod cli;
pub mod diagnostic;
pub mod domain;
pub mod generate;
pub mod import;
pub mod index;
pub mod manual;
pub mod model;
pub mod money;
pub mod plan;
pub mod progress;
pub mod report;
pub mod runlog;
pub mod source;
pub mod store;
pub mod user;
pub mod validate;
pub mod verify;
pub mod web;
