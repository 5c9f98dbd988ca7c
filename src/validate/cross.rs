//! What validation keeps across rows and files: the members, periods and capital accounts seen so
//! far, for duplicates within a file and references between files and to the database. Per member
//! it keeps one small entry keyed by a 128-bit hash of the email, so a million members fit in tens
//! of megabytes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::diagnostic::{Diagnostic, Diagnostics, shown};
use crate::domain::{self, Email};
use crate::money::Money;
use crate::source::SourceFile;

use super::{KnownRefs, PeriodRow};

/// A lower-case email cut to 128 bits: its MurmurHash3 (x64, 128-bit). The per-member maps of a
/// million-member file hold these 16 bytes instead of the text. Two different emails share a key
/// with a chance of about 2^-128 per pair, some 10^-27 for a million emails; and a shared key could
/// only cause a wrong diagnostic, never a wrong import, which resolves members by their text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EmailKey {
    h1: u64,
    h2: u64,
}

impl EmailKey {
    /// The key of a valid email as written (case is folded here), and its folded text.
    fn of(raw: &str) -> (EmailKey, Cow<'_, str>) {
        let lower = domain::fold_case(raw);
        let (h1, h2) = murmur3_x64_128(lower.as_bytes(), 0);
        (EmailKey { h1, h2 }, lower)
    }
}

/// MurmurHash3_x64_128 (Austin Appleby, public domain), as `mmh3.hash128(data, seed)` computes it.
fn murmur3_x64_128(data: &[u8], seed: u64) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    let mix_k1 = |k1: u64| k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mix_k2 = |k2: u64| k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    let (mut h1, mut h2) = (seed, seed);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        h1 ^= mix_k1(word(&block[..8]));
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= mix_k2(word(&block[8..]));
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    if tail.len() > 8 {
        h2 ^= mix_k2(word(&tail[8..]));
    }
    if !tail.is_empty() {
        h1 ^= mix_k1(word(&tail[..tail.len().min(8)]));
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = mix(h1);
    h2 = mix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

/// MurmurHash3's 64-bit finaliser: every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Hash for EmailKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.h1);
    }
}

/// The key already is a hash: the map uses it as it is instead of hashing it again.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Editor line by email, one 24-byte entry per member.
type EmailLines = HashMap<EmailKey, u64, BuildHasherDefault<KeyHasher>>;

/// Cross-row state: duplicates within a file and references between files.
#[derive(Default)]
pub(super) struct CrossState {
    pub(super) members_given: bool,
    pub(super) members_complete: bool,
    pub(super) periods_given: bool,
    pub(super) periods_complete: bool,
    emails: EmailLines,
    ens: HashMap<String, (u64, String)>,
    periods: HashMap<String, u64>,
    accounts: EmailLines,
}

impl CrossState {
    pub(super) fn period(
        &mut self,
        file: &SourceFile,
        line: u64,
        name: Option<&str>,
        row: Option<&PeriodRow>,
        diags: &mut Diagnostics,
    ) {
        let Some(name) = name.or_else(|| row.map(|r| r.name.as_str())) else {
            return;
        };
        if let Some(first) = self.periods.get(name) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "period.duplicate",
                    format!(
                        "period `{}` is already defined on line {first}",
                        shown(name)
                    ),
                )
                .at(line)
                .column("name")
                .value(name)
                .hint("each period name appears once"),
            );
        } else {
            self.periods.insert(name.to_string(), line);
        }
    }

    pub(super) fn member(
        &mut self,
        file: &SourceFile,
        line: u64,
        raw_email: Option<&str>,
        ens: Option<&str>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        let Some(raw) = raw_email.filter(|r| Email::check(r).is_ok()) else {
            return;
        };
        let (key, email) = EmailKey::of(raw);
        if let Some(first) = self.emails.get(&key) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "email.duplicate",
                    format!(
                        "{} is already on line {first} (emails are compared ignoring case)",
                        shown(&email)
                    ),
                )
                .at(line)
                .column("email")
                .value(raw)
                .hint("keep one row per member"),
            );
        } else {
            self.emails.insert(key, line);
        }
        if let Some(ens) = ens.filter(|e| domain::is_ens_name(e)) {
            if let Some((first, owner)) = self.ens.get(ens) {
                if *owner != email {
                    diags.push(
                        Diagnostic::error(
                            &file.display,
                            "ens.duplicate",
                            format!(
                                "ENS name {} is already given to {} on line {first}",
                                shown(ens),
                                shown(owner)
                            ),
                        )
                        .at(line)
                        .column("ens_name")
                        .value(ens)
                        .hint("an ENS name belongs to one member"),
                    );
                }
            } else if let Some(owner) = known.ens_names.get(ens).filter(|o| **o != email) {
                diags.push(
                    Diagnostic::error(
                        &file.display,
                        "ens.duplicate",
                        format!(
                            "ENS name {} already belongs to {} in the database",
                            shown(ens),
                            shown(owner)
                        ),
                    )
                    .at(line)
                    .column("ens_name")
                    .value(ens)
                    .hint("an ENS name belongs to one member"),
                );
            } else {
                self.ens.insert(ens.to_string(), (line, email.into_owned()));
            }
        }
    }

    /// The member a valid email names: its key and its lower-case text, and whether the member is
    /// known (in the members file or the database).
    fn member_ref<'e>(&self, raw: &'e str, known: &KnownRefs) -> (EmailKey, Cow<'e, str>, bool) {
        let (key, email) = EmailKey::of(raw);
        let found = self.emails.contains_key(&key)
            || known.member_emails.contains(email.as_ref())
            || (self.members_given && !self.members_complete);
        (key, email, found)
    }

    pub(super) fn capital_account(
        &mut self,
        file: &SourceFile,
        line: u64,
        // Only a valid email: an invalid one was reported with its row.
        raw_email: Option<&str>,
        amounts: Option<(Money, Money)>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        let Some(raw_email) = raw_email else {
            return;
        };
        let (key, email, found) = self.member_ref(raw_email, known);
        if !found {
            diags.push(unknown_member(file, line, &email, self.members_given));
        }
        if let Some(first) = self.accounts.get(&key) {
            diags.push(
                Diagnostic::error(
                    &file.display,
                    "capital.duplicate",
                    format!(
                        "{} already has a capital account on line {first}",
                        shown(&email)
                    ),
                )
                .at(line)
                .column("member_email")
                .value(&email)
                .hint("a member has one capital account; merge the two rows"),
            );
        } else {
            self.accounts.insert(key, line);
        }
        if let Some((balance, tax_basis)) = amounts.filter(|(b, t)| b != t) {
            diags.push(
                Diagnostic::note(
                    &file.display,
                    "balance.tax_basis_differs",
                    format!(
                        "balance {balance} differs from tax_basis {tax_basis} (expected for a property contribution)"
                    ),
                )
                .at(line)
                .column("tax_basis")
                .value(&tax_basis.to_string()),
            );
        }
    }

    pub(super) fn contribution(
        &mut self,
        file: &SourceFile,
        line: u64,
        raw_email: Option<&str>,
        period: Option<&str>,
        known: &KnownRefs,
        diags: &mut Diagnostics,
    ) {
        if let Some((_, email, false)) = raw_email.map(|raw| self.member_ref(raw, known)) {
            diags.push(unknown_member(file, line, &email, self.members_given));
        }
        if let Some(period) = period {
            let found = self.periods.contains_key(period)
                || known.period_names.contains(period)
                || (self.periods_given && !self.periods_complete);
            if !found {
                diags.push(
                    Diagnostic::error(
                        &file.display,
                        "ref.period",
                        format!(
                            "no period named `{}` in the periods file or the database",
                            shown(period)
                        ),
                    )
                    .at(line)
                    .column("period_name")
                    .value(period)
                    .hint(
                        "add it to periods.csv, or create it with `habitat-migrate period create`",
                    ),
                );
            }
        }
    }
}

fn unknown_member(file: &SourceFile, line: u64, email: &str, members_given: bool) -> Diagnostic {
    let hint = if members_given {
        "check the spelling, or add the member to members.csv"
    } else {
        "import members before capital accounts and contributions, or check the spelling"
    };
    Diagnostic::error(
        &file.display,
        "ref.member",
        format!("Member not found: {}", shown(email)),
    )
    .at(line)
    .column("member_email")
    .value(email)
    .hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference() {
        // Reference values from `mmh3.hash128(text, 0)` (low and high 64 bits).
        for (text, h1, h2) in [
            ("", 0, 0),
            ("a", 0x8555_5565_f659_7889, 0xe6b5_3a48_510e_895a),
            ("hello", 0xcbd8_a7b3_41bd_9b02, 0x5b1e_906a_48ae_1d19),
            (
                "The quick brown fox jumps over the lazy dog",
                0xe34b_bc7b_bc07_1b6c,
                0x7a43_3ca9_c49a_9347,
            ),
            (
                "member0000001@example.org",
                0x801e_2d48_f6bd_a523,
                0x5eb5_10db_02f7_64da,
            ),
            (
                "0123456789abcdef",
                0x4be0_6d94_cf4a_d1a7,
                0x87c3_5b5c_63a7_08da,
            ),
            (
                "0123456789abcdef0",
                0xeb24_ae87_85a5_c075,
                0x73fb_68b3_3131_28ca,
            ),
        ] {
            assert_eq!(murmur3_x64_128(text.as_bytes(), 0), (h1, h2), "{text:?}");
        }
    }

    #[test]
    fn email_keys_fold_case() {
        assert_eq!(
            EmailKey::of("Ada@Example.ORG").0,
            EmailKey::of("ada@example.org").0
        );
        assert_ne!(
            EmailKey::of("ada@example.org").0,
            EmailKey::of("ada@example.com").0
        );
    }
}
