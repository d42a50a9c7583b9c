//! The pieces of the hashes that name controller-made objects (`pod-template-hash`,
//! `controller-revision-hash`): FNV-32a and Kubernetes' `SafeEncodeString` alphabet (no vowels,
//! no look-alikes). The hash of a template is `deployment::hash::compute_hash` (canonical JSON).

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-32a of bytes.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Kubernetes' `rand.SafeEncodeString` of the decimal form of `n`.
pub fn safe_encode(n: u32) -> String {
    n.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_and_encoding() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        let s = safe_encode(1234567890);
        assert_eq!(s.len(), 10);
        assert!(s.bytes().all(|b| ALPHABET.contains(&b)));
    }
}
