//! CSV records with bounded memory: `csv-core`'s parser driven over reusable buffers that never grow
//! past the reader's limits.
//!
//! The `csv` crate grows its record buffers without bound, so a 100 MB line (or an unclosed quote
//! that swallows the rest of a 2 GB file) would be held in memory whole. Here a record that outgrows
//! [`MAX_FIELD_BYTES`], [`MAX_RECORD_BYTES`] or [`MAX_COLUMNS`] is read to its end into a small
//! scratch buffer and discarded, and the caller is told which limit it broke and on which line.
//! Line numbers follow the `csv` crate's rule: a record's line is the line the previous record
//! ended on, counted in `\n`.

use std::cell::RefCell;
use std::io::{self, BufRead};

use csv_core::ReadRecordResult;

use super::{MAX_COLUMNS, MAX_FIELD_BYTES, MAX_RECORD_BYTES};

/// Which limit a record broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// The field at this index (0-based) is longer than [`MAX_FIELD_BYTES`].
    Field(usize),
    /// The record is longer than [`MAX_RECORD_BYTES`].
    Record,
    /// The record has more than [`MAX_COLUMNS`] fields.
    Fields,
}

/// The outcome of reading one record.
#[derive(Debug)]
pub(crate) enum Raw {
    /// A record starting on this line; its fields are [`RawCsv::field`] `0..`[`RawCsv::len`].
    Record(u64),
    /// A record starting on this line broke a limit; it was read to its end and dropped.
    Overflow(u64, Overflow),
    End,
    Error(io::Error),
}

thread_local! {
    /// The parser of a file read earlier on this thread, reset. Building a parser computes its
    /// transition table, which costs more than reading a small file (it made fuzzing 18 times
    /// slower); and it cannot be copied instead: in csv-core 0.1.13, cloning a `Reader` copies
    /// only part of that table, and the copy then takes every byte for the end of a record.
    static SPARE: RefCell<Option<csv_core::Reader>> = const { RefCell::new(None) };
}

const SCRATCH_BYTES: usize = 1 << 16;
const SCRATCH_ENDS: usize = 256;

pub(crate) struct RawCsv {
    input: Box<dyn BufRead + Send>,
    core: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    /// The line on which the next record starts.
    line: u64,
    done: bool,
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
}

impl RawCsv {
    pub(crate) fn new(input: Box<dyn BufRead + Send>) -> RawCsv {
        // `Terminator::Any(b'\n')`: with the default CRLF handling the line count of a CRLF file
        // comes out one short; a stray `\r` left at the end of a value is trimmed like any space.
        let core = SPARE
            .with(|spare| spare.borrow_mut().take())
            .unwrap_or_else(|| {
                csv_core::ReaderBuilder::new()
                    .terminator(csv_core::Terminator::Any(b'\n'))
                    .build()
            });
        RawCsv {
            input,
            core,
            fields: vec![0; 1024],
            ends: vec![0; 32],
            len: 0,
            line: 1,
            done: false,
            scratch: Vec::new(),
            scratch_ends: Vec::new(),
        }
    }

    /// The number of fields of the last record read.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A field of the last record read, as raw bytes.
    pub(crate) fn field(&self, index: usize) -> &[u8] {
        let (start, end) = self.range(index);
        &self.fields[start..end]
    }

    /// Where a field of the last record read lies in [`RawCsv::record_bytes`].
    pub(super) fn range(&self, index: usize) -> (usize, usize) {
        let start = match index {
            0 => 0,
            i => self.ends[i - 1],
        };
        (start, self.ends[index])
    }

    /// All fields of the last record read, one after another.
    pub(super) fn record_bytes(&self) -> &[u8] {
        match self.len {
            0 => &[],
            n => &self.fields[..self.ends[n - 1]],
        }
    }

    pub(crate) fn fields(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).map(|i| self.field(i))
    }

    /// Reads the next record; one that breaks a limit is read to its end and dropped.
    pub(crate) fn read(&mut self) -> Raw {
        self.read_record(true)
    }

    /// Reads the header: a header that breaks a limit ends the file there (nothing after it can
    /// be read as this table), so the rest is not scanned for its end.
    pub(crate) fn read_header(&mut self) -> Raw {
        let raw = self.read_record(false);
        if matches!(raw, Raw::Overflow(..)) {
            self.done = true;
        }
        raw
    }

    fn read_record(&mut self, skip_overflow: bool) -> Raw {
        if self.done {
            return Raw::End;
        }
        let line = self.line;
        let (mut outlen, mut endlen) = (0usize, 0usize);
        let mut overflow = None;
        self.len = 0;
        loop {
            let input = match self.input.fill_buf() {
                Ok(input) => input,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Raw::Error(e);
                }
            };
            let (result, nin, nout, nend) = match overflow {
                Some(_) => self
                    .core
                    .read_record(input, &mut self.scratch, &mut self.scratch_ends),
                None => {
                    let field_start = if endlen == 0 {
                        0
                    } else {
                        self.ends[endlen - 1]
                    };
                    let cap = self
                        .fields
                        .len()
                        .min(field_start + MAX_FIELD_BYTES + 1)
                        .min(MAX_RECORD_BYTES + 1);
                    self.core.read_record(
                        input,
                        &mut self.fields[outlen..cap],
                        &mut self.ends[endlen..],
                    )
                }
            };
            self.input.consume(nin);
            self.line = self.core.line();
            if overflow.is_none() {
                outlen += nout;
                endlen += nend;
            }
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if overflow.is_none() => {
                    let field_start = if endlen == 0 {
                        0
                    } else {
                        self.ends[endlen - 1]
                    };
                    if outlen > field_start + MAX_FIELD_BYTES {
                        overflow = Some(Overflow::Field(endlen));
                    } else if outlen > MAX_RECORD_BYTES {
                        overflow = Some(Overflow::Record);
                    } else {
                        let grown = (self.fields.len() * 2).min(MAX_RECORD_BYTES + 1);
                        self.fields.resize(grown, 0);
                        continue;
                    }
                    if !skip_overflow {
                        return Raw::Overflow(line, overflow.unwrap_or(Overflow::Record));
                    }
                    self.start_skipping();
                }
                ReadRecordResult::OutputEndsFull if overflow.is_none() => {
                    if self.ends.len() >= MAX_COLUMNS {
                        if !skip_overflow {
                            return Raw::Overflow(line, Overflow::Fields);
                        }
                        overflow = Some(Overflow::Fields);
                        self.start_skipping();
                    } else {
                        let grown = (self.ends.len() * 2).min(MAX_COLUMNS);
                        self.ends.resize(grown, 0);
                    }
                }
                // While skipping, the scratch buffers are simply reused.
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => {
                    return match overflow {
                        Some(what) => Raw::Overflow(line, what),
                        None => {
                            self.len = endlen;
                            Raw::Record(line)
                        }
                    };
                }
                ReadRecordResult::End => {
                    self.done = true;
                    return match overflow {
                        Some(what) => Raw::Overflow(line, what),
                        None => Raw::End,
                    };
                }
            }
        }
    }

    fn start_skipping(&mut self) {
        if self.scratch.is_empty() {
            self.scratch = vec![0; SCRATCH_BYTES];
            self.scratch_ends = vec![0; SCRATCH_ENDS];
        }
    }
}

impl Drop for RawCsv {
    fn drop(&mut self) {
        let mut core = std::mem::take(&mut self.core);
        core.reset();
        SPARE.with(|spare| *spare.borrow_mut() = Some(core));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &[u8]) -> RawCsv {
        RawCsv::new(Box::new(io::Cursor::new(text.to_vec())))
    }

    fn records(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut r = reader(text);
        let mut out = Vec::new();
        loop {
            match r.read() {
                Raw::Record(line) => out.push((
                    line,
                    r.fields()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                )),
                Raw::Overflow(line, what) => out.push((line, vec![format!("{what:?}")])),
                Raw::End => return out,
                Raw::Error(e) => panic!("{e}"),
            }
        }
    }

    /// The `csv` crate with the settings the reader used before: same records, same lines.
    fn with_csv_crate(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(text);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while r.read_byte_record(&mut record).unwrap_or(false) {
            out.push((
                record.position().map_or(0, csv::Position::line),
                record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            ));
        }
        out
    }

    #[test]
    fn records_and_lines_match_the_csv_crate() {
        for text in [
            &b"a,b\n1,2\n"[..],
            b"\xEF\xBB\xBFa,b\r\n1,2\r\n\r\n3,4",
            b"a,b\n\n\n1,\"x\ny\"\n2,3\n",
            b"a\n\"unclosed\n1\n",
            b"",
            b"\n\n",
            b"a,\"b\"\"c\",d\n",
            b"a,b\n  \n1,2\n",
        ] {
            assert_eq!(records(text), with_csv_crate(text), "{text:?}");
        }
    }

    #[test]
    fn a_reused_parser_reads_like_a_new_one() {
        // The first file ends inside a quoted field and leaves the parser mid-record.
        let _ = records(b"a,\"b\n1");
        let text = b"\xEF\xBB\xBFa,b\n1,\"x\ny\"\n";
        assert_eq!(records(text), with_csv_crate(text));
    }

    #[test]
    fn an_over_long_field_is_dropped_and_reading_goes_on() {
        let mut text = b"a,b\n1,".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_FIELD_BYTES + 1));
        text.extend(b"\n2,3\n");
        let got = records(&text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], (2, vec!["Field(1)".to_string()]));
        assert_eq!(got[2], (3, vec!["2".to_string(), "3".to_string()]));
    }

    #[test]
    fn a_field_of_exactly_the_limit_is_read() {
        let mut text = b"a\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_FIELD_BYTES));
        let got = records(&text);
        assert_eq!(got[1].1[0].len(), MAX_FIELD_BYTES);
    }

    #[test]
    fn too_many_fields_or_bytes_in_a_record() {
        let text = ",".repeat(MAX_COLUMNS) + "\nok\n";
        assert_eq!(
            records(text.as_bytes()),
            vec![(1, vec!["Fields".to_string()]), (2, vec!["ok".to_string()])]
        );
        let text = ",".repeat(MAX_COLUMNS - 1) + "\n";
        assert_eq!(records(text.as_bytes())[0].1.len(), MAX_COLUMNS);

        let field = "y".repeat(MAX_FIELD_BYTES / 2);
        let text = vec![field; 9].join(",");
        assert_eq!(
            records(text.as_bytes()),
            vec![(1, vec!["Record".to_string()])]
        );
    }
}
