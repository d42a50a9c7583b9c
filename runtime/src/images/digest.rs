//! Content digests: parsing and validating `sha256:<hex>` strings, and a reader that hashes
//! (and counts) what passes through it. sha256 is the only algorithm the store keeps.

use super::ImageError;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read};

/// A validated sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Digest {
    hex: String,
}

pub(crate) fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; other algorithms are refused as unsupported.
    pub(crate) fn parse(s: &str) -> Result<Self, ImageError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(ImageError::InvalidDigest(s.to_string()));
        };
        if alg != "sha256" {
            if matches!(alg, "sha384" | "sha512") && is_lower_hex(hex) {
                return Err(ImageError::Unsupported(format!(
                    "digest algorithm {alg} (only sha256)"
                )));
            }
            return Err(ImageError::InvalidDigest(s.to_string()));
        }
        Self::from_hex(hex).ok_or_else(|| ImageError::InvalidDigest(s.to_string()))
    }

    /// A digest from its 64 hex digits.
    pub(crate) fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && is_lower_hex(hex)).then(|| Digest {
            hex: hex.to_string(),
        })
    }

    /// The digest of some bytes.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    pub(crate) fn hex(&self) -> &str {
        &self.hex
    }

    /// Checks that `bytes` have this digest.
    pub(crate) fn verify(&self, bytes: &[u8]) -> Result<(), ImageError> {
        let actual = Digest::of(bytes);
        if &actual == self {
            Ok(())
        } else {
            Err(ImageError::DigestMismatch {
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Hashes and counts the bytes read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads what is left, then returns the digest and length of everything read.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            Digest {
                hex: hex::encode(self.hasher.finalize()),
            },
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_hash() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                matches!(Digest::parse(bad), Err(ImageError::InvalidDigest(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "a".repeat(128))),
            Err(ImageError::Unsupported(_))
        ));
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut first = [0u8; 1];
        r.read_exact(&mut first).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 3);
        assert_eq!(d, Digest::of(b"abc"));
        assert!(d.verify(b"abc").is_ok());
        assert!(matches!(
            d.verify(b"abd"),
            Err(ImageError::DigestMismatch { .. })
        ));
    }
}
