//! Members by email, compactly: the structure an import keeps per member.
//!
//! An import must know, for every member of the database and of the files, a few facts: which
//! line of the members file lists it, its id, the fingerprint of its row, its capital account.
//! Kept as emails in hash maps of structs, that cost about a hundred bytes per member, doubled
//! while a map grew, and was paid two or three times over (validation, plan, accounts): 470 MB at a
//! million members. Here an email is cut to a 128-bit key ([`TextKey`]), each member gets a dense
//! *slot* number the first time it is seen ([`MemberKeys`]), and each fact lives in a plain vector
//! indexed by slot, so a fact costs its own size per member and one lookup is one probe of a table
//! of slot numbers.
//!
//! Keys are a hash, not the text: two different emails share a key with a chance of about 2^-128
//! per pair, some 10^-27 for a million members. The import resolves contributions to members by
//! key, so that is the chance of a wrong import; it is far below that of an undetected disk error.

use std::hash::{BuildHasherDefault, Hash, Hasher};

use hashbrown::HashTable;

use crate::domain;

/// A text cut to 128 bits: its MurmurHash3 (x64, 128-bit), as `mmh3.hash128(text, 0)` computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextKey {
    h1: u64,
    h2: u64,
}

impl TextKey {
    /// The key of a text exactly as it is (an ENS name, a period name).
    pub fn exact(text: &str) -> TextKey {
        let (h1, h2) = murmur3_x64_128(text.as_bytes(), 0);
        TextKey { h1, h2 }
    }

    /// The key of an email, which is compared ignoring case.
    pub fn email(email: &str) -> TextKey {
        TextKey::exact(&domain::fold_case(email))
    }

    /// The key's first 64 bits, already well mixed: what hash tables use as the hash.
    fn hash64(self) -> u64 {
        self.h1
    }
}

impl Hash for TextKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.h1);
    }
}

/// A hasher for keys that already are hashes: it passes the key's first 64 bits through instead
/// of hashing them again. Only for [`TextKey`]s (anything else is folded byte by byte).
#[derive(Default)]
pub struct KeyHasher(u64);

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

/// Builds [`KeyHasher`]s, for `HashMap<TextKey, _, BuildKeyHasher>`.
pub type BuildKeyHasher = BuildHasherDefault<KeyHasher>;

/// Member email keys at dense slots `0..len()`, in the order they were first seen, so that facts
/// about members can live in vectors indexed by slot.
///
/// Per member: the key (16 bytes) and one entry of the table (a 32-bit slot number and a control
/// byte, at a load of at most 7/8, in a power-of-two table): about 26 bytes at a million members.
#[derive(Clone, Debug, Default)]
pub struct MemberKeys {
    keys: Vec<TextKey>,
    table: HashTable<u32>,
}

/// A slot as the tables keep it. Slots count members, so 32 bits are four billion members: far
/// beyond anything a run holds in memory.
pub fn slot32(slot: usize) -> u32 {
    debug_assert!(u32::try_from(slot).is_ok());
    slot as u32
}

impl MemberKeys {
    pub fn with_capacity(n: usize) -> MemberKeys {
        MemberKeys {
            keys: Vec::with_capacity(n),
            table: HashTable::with_capacity(n),
        }
    }

    /// The slot of a key, if it has one.
    pub fn get(&self, key: TextKey) -> Option<usize> {
        let keys = &self.keys;
        self.table
            .find(key.hash64(), |&slot| keys[slot as usize] == key)
            .map(|&slot| slot as usize)
    }

    /// The slot of a key, giving it the next one if it has none; and whether it was new.
    pub fn insert(&mut self, key: TextKey) -> (usize, bool) {
        if let Some(slot) = self.get(key) {
            return (slot, false);
        }
        let slot = self.keys.len();
        self.keys.push(key);
        let keys = &self.keys;
        self.table
            .insert_unique(key.hash64(), slot32(slot), |&s| keys[s as usize].hash64());
        (slot, true)
    }

    /// The key at a slot.
    pub fn key(&self, slot: usize) -> Option<TextKey> {
        self.keys.get(slot).copied()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Room for `n` more members, so that growing to a known size allocates once.
    pub fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
        let keys = &self.keys;
        self.table.reserve(n, |&s| keys[s as usize].hash64());
    }
}

/// MurmurHash3_x64_128 (Austin Appleby, public domain).
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
    h1 = mix64(h1);
    h2 = mix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

/// MurmurHash3's 64-bit finaliser: every input bit reaches every output bit.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
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
            TextKey::email("Ada@Example.ORG"),
            TextKey::email("ada@example.org")
        );
        assert_ne!(
            TextKey::email("ada@example.org"),
            TextKey::email("ada@example.com")
        );
        assert_ne!(TextKey::exact("Ada.eth"), TextKey::exact("ada.eth"));
    }

    #[test]
    fn slots_are_dense_and_stable() {
        let mut keys = MemberKeys::default();
        let emails: Vec<String> = (0..10_000)
            .map(|i| format!("member{i}@example.org"))
            .collect();
        for (i, e) in emails.iter().enumerate() {
            assert_eq!(keys.insert(TextKey::email(e)), (i, true));
        }
        for (i, e) in emails.iter().enumerate() {
            assert_eq!(keys.insert(TextKey::email(&e.to_uppercase())), (i, false));
            assert_eq!(keys.get(TextKey::email(e)), Some(i));
            assert_eq!(keys.key(i), Some(TextKey::email(e)));
        }
        assert_eq!(keys.len(), 10_000);
        assert_eq!(keys.get(TextKey::email("nobody@example.org")), None);
        assert_eq!(keys.key(10_000), None);
    }
}
