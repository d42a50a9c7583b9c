//! Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1e3`) parsed exactly into nano-units,
//! with the rounding of `Quantity.Value()` and `MilliValue()` (both round up), for downward API
//! resource fields and tmpfs sizes.

/// A quantity held as an integer number of nano-units (1 = 10⁻⁹).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Quantity {
    nanos: i128,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses a quantity string; `None` if it is not one (or overflows 128 bits).
    pub(crate) fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(split);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if frac_part.contains('.') {
            return None;
        }
        let mut mantissa: i128 = 0;
        for c in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(c - b'0'))?;
        }
        let frac_digits = i32::try_from(frac_part.len()).ok()?;
        let (binary_shift, exp10): (u32, i32) = match suffix {
            "" => (0, 0),
            "Ki" => (10, 0),
            "Mi" => (20, 0),
            "Gi" => (30, 0),
            "Ti" => (40, 0),
            "Pi" => (50, 0),
            "Ei" => (60, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            _ => {
                let exp = suffix.strip_prefix(['e', 'E'])?;
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (0, exp.parse::<i32>().ok()?)
            }
        };
        let numerator = mantissa.checked_mul(1i128.checked_shl(binary_shift)?)?;
        // nanos = numerator * 10^(exp10 + 9 - frac_digits), rounded up.
        let total = exp10.checked_add(9)?.checked_sub(frac_digits)?;
        let nanos = if total >= 0 {
            numerator.checked_mul(10i128.checked_pow(u32::try_from(total).ok()?)?)?
        } else {
            let neg_total = u32::try_from(-total).ok()?;
            match 10i128.checked_pow(neg_total) {
                Some(div) => ceil_div(numerator, div),
                None => i128::from(numerator > 0),
            }
        };
        Some(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    /// `Quantity.Value()`: whole units, rounded up.
    pub(crate) fn value(&self) -> i128 {
        ceil_div(self.nanos, NANO)
    }

    /// `Quantity.MilliValue()`: thousandths, rounded up.
    pub(crate) fn milli_value(&self) -> i128 {
        ceil_div(self.nanos, NANO / 1000)
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.nanos == 0
    }
}

/// Division rounding towards positive infinity (`d` > 0).
pub(crate) fn ceil_div(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    if n.rem_euclid(d) == 0 {
        q
    } else {
        q + 1
    }
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    fn q(s: &str) -> Quantity {
        match Quantity::parse(s) {
            Some(q) => q,
            None => panic!("{s} should parse"),
        }
    }

    #[test]
    fn parses_suffixes() {
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("500m").value(), 1);
        assert_eq!(q("2").milli_value(), 2000);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("128Mi").value(), 128 * 1024 * 1024);
        assert_eq!(q("1G").value(), 1_000_000_000);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
        assert_eq!(q("0.5Gi").value(), 512 * 1024 * 1024);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q(".5").milli_value(), 500);
        assert!(q("0").is_zero());
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "abc", "1.2.3", "1x", "1e", "--1", ".", "1Ki2"] {
            assert!(Quantity::parse(s).is_none(), "{s}");
        }
    }
}
