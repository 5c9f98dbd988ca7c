//! Validation of a capital_accounts file: the first byte picks CSV, JSON or JSON lines, the rest is the file;
//! the other tables are the good test bundle's, so references across files are checked too.
#![no_main]

use habitat_migrate::source::Table;
use habitat_migrate_fuzz::validate_one;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| validate_one(Table::CapitalAccounts, data));
