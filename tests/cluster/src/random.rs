//! Random names and ids: object uids, pod name suffixes, cluster ids.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// 64 random bits from the standard library's per-hasher random keys.
fn bits() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// `len` lowercase hex characters.
pub(crate) fn hex(len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        out.push_str(&format!("{:016x}", bits()));
    }
    out.truncate(len);
    out
}

/// A UUID-shaped id, as `metadata.uid` carries.
pub(crate) fn uid() -> String {
    let h = hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A suffix as Kubernetes generates for pod names: consonants and digits that spell no word.
pub(crate) fn suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut b = bits();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[(b % ALPHABET.len() as u64) as usize]));
            b /= ALPHABET.len() as u64;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(hex(40).len(), 40);
        assert_ne!(hex(12), hex(12));
        let uid = uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.matches('-').count(), 4);
        let s = suffix(5);
        assert_eq!(s.len(), 5);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"aeiou".contains(c))
        );
    }
}
