//! Kubernetes resource quantities (`500m`, `1Gi`, `1e3`): parsing, comparison, rounding and the
//! canonical spelling `resource.Quantity.String()` gives (used in messages and by defaulting).

use std::cmp::Ordering;

/// How a quantity was written, which decides how it is spelled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `k`, `M`, `m`, no suffix, ...
    DecimalSI,
    /// `Ki`, `Mi`, ...
    BinarySI,
    /// `e3`, `E-2`, ...
    DecimalExponent,
}

/// A parsed quantity: `mantissa * 10^exp`.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    mantissa: i128,
    exp: i32,
    pub format: Format,
}

/// The message upstream gives for an unparsable quantity.
pub const QUANTITY_FORMAT_ERR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const MAX_DIGITS: usize = 30;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Quantity {
    /// Parses a quantity string; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        if bytes[0] == b'+' || bytes[0] == b'-' {
            negative = bytes[0] == b'-';
            pos = 1;
        }
        let num_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let num = &s[num_start..pos];
        let mut denom = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let d_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            denom = &s[d_start..pos];
        }
        if num.is_empty() && denom.is_empty() {
            return None;
        }
        let suffix = &s[pos..];
        let (base2_exp, exp10, format) = match suffix {
            "" => (0, 0, Format::DecimalSI),
            "n" => (0, -9, Format::DecimalSI),
            "u" => (0, -6, Format::DecimalSI),
            "m" => (0, -3, Format::DecimalSI),
            "k" => (0, 3, Format::DecimalSI),
            "M" => (0, 6, Format::DecimalSI),
            "G" => (0, 9, Format::DecimalSI),
            "T" => (0, 12, Format::DecimalSI),
            "P" => (0, 15, Format::DecimalSI),
            "E" => (0, 18, Format::DecimalSI),
            "Ki" => (10, 0, Format::BinarySI),
            "Mi" => (20, 0, Format::BinarySI),
            "Gi" => (30, 0, Format::BinarySI),
            "Ti" => (40, 0, Format::BinarySI),
            "Pi" => (50, 0, Format::BinarySI),
            "Ei" => (60, 0, Format::BinarySI),
            _ => {
                let rest = suffix
                    .strip_prefix('e')
                    .or_else(|| suffix.strip_prefix('E'))?;
                let digits = rest
                    .strip_prefix('+')
                    .or_else(|| rest.strip_prefix('-'))
                    .unwrap_or(rest);
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let e: i32 = rest.parse().ok()?;
                if e.abs() > 1000 {
                    return None;
                }
                (0, e, Format::DecimalExponent)
            }
        };
        // Mantissa from the significant digits (excess precision beyond MAX_DIGITS is dropped).
        let mut digits: String = format!("{num}{denom}");
        let mut exp = exp10 - denom.len() as i32;
        let trimmed = digits.trim_start_matches('0').to_string();
        digits = if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed
        };
        if digits.len() > MAX_DIGITS {
            let extra = digits.len() - MAX_DIGITS;
            digits.truncate(MAX_DIGITS);
            exp += extra as i32;
        }
        let mut mantissa: i128 = digits.parse().ok()?;
        if base2_exp > 0 {
            mantissa = mantissa.checked_mul(1i128 << base2_exp)?;
        }
        if negative {
            mantissa = -mantissa;
        }
        let mut q = Quantity {
            mantissa,
            exp,
            format,
        };
        q.normalize();
        // Values below a nano are rounded up (away from zero), as upstream does.
        q.round_up(-9);
        Some(q)
    }

    fn normalize(&mut self) {
        if self.mantissa == 0 {
            self.exp = 0;
            return;
        }
        while self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exp += 1;
        }
    }

    /// Rounds away from zero to `10^scale` precision (`scale` -3 = milli), as `RoundUp` does.
    pub fn round_up(&mut self, scale: i32) {
        if self.exp >= scale {
            return;
        }
        let shift = (scale - self.exp) as u32;
        match pow10(shift) {
            Some(p) => {
                let q = self.mantissa / p;
                let r = self.mantissa % p;
                self.mantissa = if r > 0 {
                    q + 1
                } else if r < 0 {
                    q - 1
                } else {
                    q
                };
            }
            None => {
                self.mantissa = self.mantissa.signum();
            }
        }
        self.exp = scale;
        self.normalize();
    }

    /// The zero quantity.
    pub fn zero() -> Quantity {
        Quantity {
            mantissa: 0,
            exp: 0,
            format: Format::DecimalSI,
        }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// Whether the value is a whole number.
    pub fn is_integer(&self) -> bool {
        self.exp >= 0 || self.mantissa == 0
    }

    fn as_f64(&self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exp)
    }

    /// Compares the numeric values.
    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
        let e = self.exp.min(other.exp);
        let a = pow10((self.exp - e) as u32).and_then(|p| self.mantissa.checked_mul(p));
        let b = pow10((other.exp - e) as u32).and_then(|p| other.mantissa.checked_mul(p));
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self
                .as_f64()
                .partial_cmp(&other.as_f64())
                .unwrap_or(Ordering::Equal),
        }
    }

    /// The sum of two quantities (keeping this one's format).
    pub fn add(&self, other: &Quantity) -> Quantity {
        let e = self.exp.min(other.exp);
        let a = pow10((self.exp - e) as u32).and_then(|p| self.mantissa.checked_mul(p));
        let b = pow10((other.exp - e) as u32).and_then(|p| other.mantissa.checked_mul(p));
        let mut q = match (a, b) {
            (Some(a), Some(b)) => match a.checked_add(b) {
                Some(m) => Quantity {
                    mantissa: m,
                    exp: e,
                    format: self.format,
                },
                None => *self,
            },
            _ => *self,
        };
        q.normalize();
        q
    }

    /// The value in units of `10^scale`, rounded up (away from zero) and saturated to `i64`:
    /// `scaled_value(0)` is `Quantity.Value()`, `scaled_value(-3)` is `MilliValue()`.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        let mut q = *self;
        q.round_up(scale);
        let shift = q.exp - scale;
        let v = if shift <= 0 {
            Some(q.mantissa)
        } else {
            pow10(shift as u32).and_then(|p| q.mantissa.checked_mul(p))
        };
        match v {
            Some(v) => v.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            None if q.mantissa < 0 => i64::MIN,
            None => i64::MAX,
        }
    }

    /// The integer value when the quantity is whole and fits.
    fn whole(&self) -> Option<i128> {
        if self.exp < 0 {
            return None;
        }
        pow10(self.exp as u32).and_then(|p| self.mantissa.checked_mul(p))
    }

    /// The canonical spelling (`resource.Quantity.String()`).
    pub fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            let small = self.cmp_value(&Quantity {
                mantissa: -1024,
                exp: 0,
                format,
            }) == Ordering::Greater
                && self.cmp_value(&Quantity {
                    mantissa: 1024,
                    exp: 0,
                    format,
                }) == Ordering::Less;
            if small || self.whole().is_none() {
                format = Format::DecimalSI;
            }
        }
        if format == Format::BinarySI {
            if let Some(mut v) = self.whole() {
                let mut e = 0;
                while e < 6 && v != 0 && v % 1024 == 0 {
                    v /= 1024;
                    e += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
                return format!("{v}{suffix}");
            }
        }
        // Decimal: the exponent goes down to a multiple of three.
        let mut m = self.mantissa;
        let mut e = self.exp;
        let rem = e.rem_euclid(3);
        if rem != 0 {
            match pow10(rem as u32).and_then(|p| m.checked_mul(p)) {
                Some(v) => {
                    m = v;
                    e -= rem;
                }
                None => return format!("{}e{}", self.mantissa, self.exp),
            }
        }
        if format == Format::DecimalExponent {
            return if e == 0 {
                format!("{m}")
            } else {
                format!("{m}e{e}")
            };
        }
        while e > 18 {
            match m.checked_mul(1000) {
                Some(v) => {
                    m = v;
                    e -= 3;
                }
                None => return format!("{m}e{e}"),
            }
        }
        let suffix = match e {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => return format!("{m}e{e}"),
        };
        format!("{m}{suffix}")
    }
}

/// Parses and canonicalizes (rounding up to milli precision, as `SetDefaults_ResourceList` does);
/// `None` for an unparsable value.
pub fn canonical_resource_value(s: &str) -> Option<String> {
    let mut q = Quantity::parse(s)?;
    q.round_up(-3);
    Some(q.canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        Quantity::parse(s)
            .map(|q| q.canonical())
            .unwrap_or_else(|| "ERR".into())
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(c("500m"), "500m");
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("1000m"), "1");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1536Mi"), "1536Mi");
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("128974848"), "128974848");
        assert_eq!(c("129e6"), "129e6");
        assert_eq!(c("123Mi"), "123Mi");
        assert_eq!(c("1k"), "1k");
        assert_eq!(c("1000"), "1k");
        assert_eq!(c("100"), "100");
        assert_eq!(c("0"), "0");
        assert_eq!(c("-1"), "-1");
        assert_eq!(c("0.05"), "50m");
        assert_eq!(c("2"), "2");
        assert_eq!(c("1E"), "1E");
        assert_eq!(c("12e3"), "12e3");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("0.0000000001"), "1n");
        assert_eq!(c("abc"), "ERR");
        assert_eq!(c("1Qi"), "ERR");
        assert_eq!(c("."), "ERR");
        assert_eq!(canonical_resource_value("0.0001").as_deref(), Some("1m"));
        assert_eq!(canonical_resource_value("1.5"), Some("1500m".to_string()));
    }

    #[test]
    fn comparisons() {
        let q = |s: &str| Quantity::parse(s).map(|q| q.canonical());
        assert!(q("1").is_some());
        let p = |s: &str| {
            Quantity::parse(s).unwrap_or(Quantity {
                mantissa: 0,
                exp: 0,
                format: Format::DecimalSI,
            })
        };
        assert_eq!(p("1").cmp_value(&p("1000m")), Ordering::Equal);
        assert_eq!(p("1Gi").cmp_value(&p("1G")), Ordering::Greater);
        assert_eq!(p("100m").cmp_value(&p("0.1")), Ordering::Equal);
        assert_eq!(p("2").cmp_value(&p("1")), Ordering::Greater);
        assert_eq!(p("100m").add(&p("200m")).canonical(), "300m");
        assert!(p("-1").is_negative());
        assert!(p("2").is_integer());
        assert!(!p("500m").is_integer());
    }

    #[test]
    fn scaled_values() {
        let p = |s: &str| Quantity::parse(s).expect(s);
        assert_eq!(p("500m").scaled_value(-3), 500);
        assert_eq!(p("2").scaled_value(-3), 2000);
        assert_eq!(p("1Gi").scaled_value(0), 1 << 30);
        assert_eq!(p("1.5").scaled_value(0), 2);
        assert_eq!(p("1n").scaled_value(-3), 1);
        assert_eq!(p("100Mi").scaled_value(0), 100 << 20);
        assert_eq!(p("1e30").scaled_value(0), i64::MAX);
    }
}
