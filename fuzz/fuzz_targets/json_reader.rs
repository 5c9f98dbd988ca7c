//! The JSON reader on any bytes: the first byte picks `.json` (even: an array, or objects one
//! after another, held whole) or `.jsonl` (odd: a line at a time) and, in its next two bits, the
//! table (`'0'`/`'1'` members, `'2'`/`'3'` capital accounts, `'4'`/`'5'` contributions, `'6'`/`'7'`
//! periods); the rest is the file.
#![no_main]

use habitat_migrate_fuzz::{TABLES, read_all, source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let extension = if selector % 2 == 0 { "json" } else { "jsonl" };
    read_all(
        &source(TABLES[usize::from((selector >> 1) % 4)], extension),
        bytes,
    );
});
