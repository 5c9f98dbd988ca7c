//! SHA-256 checksums, printed as `sha256sum` prints them, for source files, backups and read-backs.
//!
//! A checksum over *rows* hashes a canonical text form of each row (fields joined by a unit
//! separator, rows by a newline) in a fixed order, so the same rows give the same value whichever
//! database they were read from.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Hashes everything a reader yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Accumulates canonical rows into one checksum.
#[derive(Default)]
pub struct RowHasher {
    hasher: Sha256,
    rows: u64,
}

impl RowHasher {
    pub fn new() -> RowHasher {
        RowHasher::default()
    }

    /// Adds one row; `None` fields are hashed as a distinct marker so `NULL` ≠ `""`.
    pub fn row<'a>(&mut self, fields: impl IntoIterator<Item = Option<&'a str>>) {
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 {
                self.hasher.update([0x1f]);
            }
            match field {
                Some(text) => {
                    self.hasher.update([b'=']);
                    self.hasher.update(text.as_bytes());
                }
                None => self.hasher.update([0x00]),
            }
        }
        self.hasher.update([b'\n']);
        self.rows += 1;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256sum() {
        // `printf abc | sha256sum`
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_reader(&b"abc"[..]).ok(), Some(sha256_bytes(b"abc")));
    }

    #[test]
    fn null_differs_from_empty() {
        let mut a = RowHasher::new();
        a.row([Some("x"), None]);
        let mut b = RowHasher::new();
        b.row([Some("x"), Some("")]);
        assert_ne!(a.finish(), b.finish());
    }
}
