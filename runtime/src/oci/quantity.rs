//! Kubernetes resource quantities (`100m`, `0.5`, `1Gi`, `512Mi`, `1e3`) parsed exactly into
//! nano-units — the precision Kubernetes itself keeps (finer values round up) — with the
//! rounding of `Quantity.Value()` / `MilliValue()` (up, away from zero) and saturating
//! arithmetic instead of overflow.

use serde_json::Value;

/// A quantity as a whole number of nano-units (10⁻⁹).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;

impl Quantity {
    /// The zero quantity.
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    /// Parses a quantity string (`<sign><digits>[.<digits>]<suffix>`, where the suffix is a
    /// binary SI suffix `Ki`…`Ei`, a decimal SI suffix `n u m k M G T P E`, or a decimal
    /// exponent `e<n>`/`E<n>`). `None` if the string is not a quantity; values too large for
    /// 128 bits saturate.
    pub fn parse(s: &str) -> Option<Quantity> {
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return None;
        }
        let (binary_shift, suffix_exp) = parse_suffix(suffix)?;

        // value = digits × 10^exp10 × 2^binary_shift, with leading and trailing zeros removed
        // from the digit string (the trailing ones moved into the exponent).
        let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
        let frac_len = i64::try_from(frac_part.len()).ok()?;
        let mut exp10 = i64::from(suffix_exp) - frac_len;
        let first = digits.iter().position(|&d| d != b'0');
        let Some(first) = first else {
            return Some(Quantity::ZERO);
        };
        let mut last = digits.len();
        while digits[last - 1] == b'0' {
            last -= 1;
            exp10 += 1;
        }
        // Keep 38 significant digits (what fits in 128 bits); a longer tail is non-zero (its
        // last digit is), so round the kept part up: the result still rounds up to the same
        // nano-unit, as Kubernetes' exact decimal arithmetic would.
        let mut significant = &digits[first..last];
        let mut round_up = false;
        if significant.len() > 38 {
            exp10 += i64::try_from(significant.len() - 38).ok()?;
            significant = &significant[..38];
            round_up = true;
        }
        let mut mantissa: u128 = 0;
        for &d in significant {
            mantissa = mantissa * 10 + u128::from(d - b'0');
        }
        mantissa += u128::from(round_up);

        let scaled = match mantissa.checked_mul(1u128 << binary_shift) {
            None => u128::MAX,
            Some(m) => {
                let k = exp10 + 9; // to nano-units
                if k >= 0 {
                    u32::try_from(k)
                        .ok()
                        .and_then(|k| 10u128.checked_pow(k))
                        .and_then(|p| m.checked_mul(p))
                        .unwrap_or(u128::MAX)
                } else {
                    match u32::try_from(-k).ok().and_then(|k| 10u128.checked_pow(k)) {
                        Some(divisor) => m.div_ceil(divisor),
                        None => 1, // a positive value far below one nano-unit rounds up to 1n
                    }
                }
            }
        };
        let magnitude = i128::try_from(scaled).unwrap_or(i128::MAX);
        Some(Quantity {
            nanos: if negative { -magnitude } else { magnitude },
        })
    }

    /// A quantity from JSON: a string, or a number (as a user may write `cpu: 1` in YAML).
    pub fn from_json(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// Whether the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whether the quantity is greater than zero.
    pub fn is_positive(&self) -> bool {
        self.nanos > 0
    }

    /// `Quantity.Value()`: whole units, rounded up (away from zero), saturating at the `i64`
    /// range.
    pub fn value(&self) -> i64 {
        scale_down(self.nanos, NANOS_PER_UNIT)
    }

    /// `Quantity.MilliValue()`: thousandths, rounded up (away from zero), saturating.
    pub fn milli_value(&self) -> i64 {
        scale_down(self.nanos, NANOS_PER_MILLI)
    }

    /// The saturating sum of two quantities.
    pub fn saturating_add(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }
}

fn scale_down(nanos: i128, per: i128) -> i64 {
    let magnitude = nanos.unsigned_abs().div_ceil(per.unsigned_abs());
    let magnitude = i128::try_from(magnitude).unwrap_or(i128::MAX);
    let v = if nanos < 0 { -magnitude } else { magnitude };
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// (binary shift, decimal exponent) of a suffix.
fn parse_suffix(suffix: &str) -> Option<(u32, i32)> {
    Some(match suffix {
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
            // Exponents beyond ±10⁶ cannot describe a representable quantity anyway.
            let magnitude: i32 = digits.parse::<i32>().ok().filter(|m| *m <= 1_000_000)?;
            (
                0,
                if exp.starts_with('-') {
                    -magnitude
                } else {
                    magnitude
                },
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn parses_kubernetes_forms() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("0.5").milli_value(), 500);
        assert_eq!(q(".5").milli_value(), 500);
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("2.").value(), 2);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("512Mi").value(), 512 << 20);
        assert_eq!(q("1.5Gi").value(), 3 << 29);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E3").value(), 1000);
        assert_eq!(q("1e-3").milli_value(), 1);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
        assert_eq!(q("128974848").value(), 128_974_848);
        assert_eq!(q("129e6").value(), 129_000_000);
        assert_eq!(q("123Mi").value(), 123 * 1024 * 1024);
        assert_eq!(q("1k").value(), 1000);
        assert_eq!(q("250u").milli_value(), 1);
        assert_eq!(q("+3").value(), 3);
        assert_eq!(q("-3").value(), -3);
        assert_eq!(q("0").value(), 0);
        assert_eq!(q("0.000").milli_value(), 0);
        assert!(q("0m").is_zero());
        assert_eq!(
            q("1.000000000000000000000000000000000000000000001").value(),
            2
        );
    }

    #[test]
    fn rounds_up_like_kubernetes() {
        // MilliValue/Value round up (away from zero); sub-nano precision rounds up to 1n.
        assert_eq!(q("1.0001m").milli_value(), 2);
        assert_eq!(q("0.1").value(), 1);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("1e-20").nanos(), 1);
        assert_eq!(q("-0.1").value(), -1);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "", "m", ".", "1..0", "1.2.3", "1x", "1KI", "1K", "1ki", "1e", "1e+", "e3", " 1", "1 ",
            "1Mi3", "--1", "1e1.5",
        ] {
            assert!(Quantity::parse(s).is_none(), "{s:?} should not parse");
        }
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(q("9Ei").value(), i64::MAX);
        assert_eq!(q("7Ei").value(), 7 << 60);
        assert_eq!(q("100Ei").value(), i64::MAX);
        assert_eq!(q("1e100").value(), i64::MAX);
        assert_eq!(
            q("99999999999999999999999999999999999999Ei").value(),
            i64::MAX
        );
        assert_eq!(q("-1e100").value(), i64::MIN);
        assert!(Quantity::parse("1e9999999999").is_none());
        assert_eq!(q("1e100").saturating_add(q("1e100")).value(), i64::MAX);
    }
}
