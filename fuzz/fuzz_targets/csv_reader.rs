//! The CSV reader on any bytes: the first byte picks the table (`'0'` members, `'1'` capital
//! accounts, `'2'` contributions, `'3'` periods, modulo 4), the rest is the file.
#![no_main]

use habitat_migrate_fuzz::{TABLES, read_all, source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    read_all(&source(TABLES[usize::from(selector % 4)], "csv"), bytes);
});
