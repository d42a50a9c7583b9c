//! CronJob schedule syntax: the checks and error texts of `github.com/robfig/cron/v3`'s
//! `ParseStandard` (five fields or an `@descriptor`), which Kubernetes reports verbatim, and the
//! parsed form ([`Parsed`]: robfig's bit sets) the CronJob controller computes times from.

use std::time::Duration;

/// Set in a field's bits when it was `*` or `?` (robfig's `starBit`): a day-of-month or
/// day-of-week field with it makes the two day fields combine with AND instead of OR.
pub const STAR_BIT: u64 = 1 << 63;

/// A parsed schedule, as robfig's `SpecSchedule` / `ConstantDelaySchedule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One bit per allowed value of each field (bit `n` = value `n`), plus [`STAR_BIT`];
    /// `location` is the `TZ=`/`CRON_TZ=` prefix, if any.
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        location: Option<String>,
    },
    /// `@every <duration>`: whole seconds, at least one.
    Every(Duration),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Go's `strconv.Atoi` followed by robfig's checks.
fn must_parse_int(expr: &str) -> Result<u32, String> {
    let digits = expr
        .strip_prefix('+')
        .or_else(|| expr.strip_prefix('-'))
        .unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": invalid syntax"
        ));
    }
    let n: i64 = match expr.parse() {
        Ok(n) => n,
        Err(_) => {
            return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": value out of range"
        ))
        }
    };
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": value out of range"
        )
    })
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_ascii_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(expr)
}

fn get_range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let mut extra = 0;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        extra = STAR_BIT;
        (b.min, b.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], b)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(get_bits(start, end, step) | extra)
}

/// The bits `start..=end` by `step`.
fn get_bits(start: u32, end: u32, step: u32) -> u64 {
    (start..=end.min(63))
        .step_by(step as usize)
        .fold(0, |bits, v| bits | 1 << v)
}

/// Every value of a field, with the star bit (robfig's `all`).
fn all(b: &Bounds) -> u64 {
    get_bits(b.min, b.max, 1) | STAR_BIT
}

fn get_field(field: &str, b: &Bounds) -> Result<u64, String> {
    let mut bits = 0;
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        bits |= get_range(expr, b)?;
    }
    Ok(bits)
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns us µs ms s m h;
/// the duration in seconds (negative allowed), or None when malformed.
fn parse_go_duration(s: &str) -> Option<f64> {
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Some(0.0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..n];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = if number.ends_with('.') {
            number.trim_end_matches('.').parse().ok()?
        } else if number.starts_with('.') {
            format!("0{number}").parse().ok()?
        } else {
            number.parse().ok()?
        };
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Some(sign * total)
}

/// Go's `time.LoadLocation` over the system's IANA database (through jiff): `""` and `UTC` are
/// UTC, `Local` the machine's zone, other names must match a zone exactly (case included, as
/// zoneinfo file names do).
pub fn load_location(name: &str) -> Option<jiff::tz::TimeZone> {
    use jiff::tz::TimeZone;
    match name {
        "" | "UTC" => Some(TimeZone::UTC),
        "Local" => Some(TimeZone::system()),
        _ => TimeZone::get(name)
            .ok()
            .filter(|tz| tz.iana_name() == Some(name)),
    }
}

/// Checks a schedule as `cron.ParseStandard` does; the error text is robfig's.
pub fn parse_standard(spec: &str) -> Result<(), String> {
    match parse(spec)? {
        Parsed::Spec {
            location: Some(name),
            ..
        } if load_location(&name).is_none() => Err(format!(
            "provided bad location {name}: unknown time zone {name}"
        )),
        _ => Ok(()),
    }
}

/// Parses a schedule as `cron.ParseStandard` does: an optional `TZ=`/`CRON_TZ=` prefix (its
/// location is looked up by the caller), then `@descriptor`, `@every <duration>` or five fields.
pub fn parse(spec: &str) -> Result<Parsed, String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    let mut location = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let i = spec.find(' ').unwrap_or(spec.len());
        let eq = spec.find('=').unwrap_or(0);
        location = Some(spec[eq + 1..i].to_string());
        spec = spec[i..].trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec, location);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Parsed::Spec {
        minute: get_field(fields[0], &MINUTES)?,
        hour: get_field(fields[1], &HOURS)?,
        dom: get_field(fields[2], &DOM)?,
        month: get_field(fields[3], &MONTHS)?,
        dow: get_field(fields[4], &DOW)?,
        location,
    })
}

/// robfig's `parseDescriptor`.
fn parse_descriptor(spec: &str, location: Option<String>) -> Result<Parsed, String> {
    let first = |b: &Bounds| 1u64 << b.min;
    let (minute, hour, dom, month, dow) = match spec {
        "@yearly" | "@annually" => (
            first(&MINUTES),
            first(&HOURS),
            first(&DOM),
            first(&MONTHS),
            all(&DOW),
        ),
        "@monthly" => (
            first(&MINUTES),
            first(&HOURS),
            first(&DOM),
            all(&MONTHS),
            all(&DOW),
        ),
        "@weekly" => (
            first(&MINUTES),
            first(&HOURS),
            all(&DOM),
            all(&MONTHS),
            first(&DOW),
        ),
        "@daily" | "@midnight" => (
            first(&MINUTES),
            first(&HOURS),
            all(&DOM),
            all(&MONTHS),
            all(&DOW),
        ),
        "@hourly" => (
            first(&MINUTES),
            all(&HOURS),
            all(&DOM),
            all(&MONTHS),
            all(&DOW),
        ),
        _ => {
            let Some(d) = spec.strip_prefix("@every ") else {
                return Err(format!("unrecognized descriptor: {spec}"));
            };
            let Some(secs) = parse_go_duration(d) else {
                return Err(format!(
                    "failed to parse duration {spec}: time: invalid duration \"{d}\""
                ));
            };
            // `cron.Every`: below a second rounds up to one; otherwise whole seconds.
            let whole = if secs < 1.0 { 1 } else { secs.floor() as u64 };
            return Ok(Parsed::Every(Duration::from_secs(whole)));
        }
    };
    Ok(Parsed::Spec {
        minute,
        hour,
        dom,
        month,
        dow,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_schedules() {
        for s in [
            "*/5 * * * *",
            "0 0 * * 0",
            "0 9-17 * * mon-fri",
            "@hourly",
            "@every 1h30m",
            "5,10 1 1 jan *",
            "? * * * *",
        ] {
            assert_eq!(parse_standard(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn robfig_messages() {
        assert_eq!(
            parse_standard("foo"),
            Err("expected exactly 5 fields, found 1: [foo]".into())
        );
        assert_eq!(
            parse_standard("60 * * * *"),
            Err("end of range (60) above maximum (59): 60".into())
        );
        assert_eq!(
            parse_standard("x * * * *"),
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(
            parse_standard("* * 0 * *"),
            Err("beginning of range (0) below minimum (1): 0".into())
        );
        assert_eq!(
            parse_standard("5-1 * * * *"),
            Err("beginning of range (5) beyond end of range (1): 5-1".into())
        );
        assert_eq!(
            parse_standard("* * * * 7"),
            Err("end of range (7) above maximum (6): 7".into())
        );
        assert_eq!(
            parse_standard("@often"),
            Err("unrecognized descriptor: @often".into())
        );
        assert_eq!(
            parse_standard("*/0 * * * *"),
            Err("step of range should be a positive number: */0".into())
        );
    }

    #[test]
    fn parsed_bits() {
        let Ok(Parsed::Spec {
            minute,
            hour,
            dom,
            month,
            dow,
            location,
        }) = parse("*/15 9-17 * jan,mar mon-fri")
        else {
            panic!("parses");
        };
        assert_eq!(minute, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(hour, (9..=17).fold(0, |b, h| b | 1 << h));
        assert_eq!(dom, (1..=31).fold(0, |b, d| b | 1 << d) | STAR_BIT);
        assert_eq!(month, 1 << 1 | 1 << 3);
        assert_eq!(dow, (1..=5).fold(0, |b, d| b | 1 << d));
        assert_eq!(location, None);
        // `*/1` keeps the star bit, `*/2` does not (robfig).
        let star = |s: &str| match parse(s) {
            Ok(Parsed::Spec { minute, .. }) => minute & STAR_BIT != 0,
            _ => panic!("{s}"),
        };
        assert!(star("*/1 * * * *"));
        assert!(!star("*/2 * * * *"));
        assert!(!star("5/10 * * * *"));
        assert_eq!(
            parse("@every 90s"),
            Ok(Parsed::Every(Duration::from_secs(90)))
        );
        assert_eq!(
            parse("@every 10ms"),
            Ok(Parsed::Every(Duration::from_secs(1)))
        );
        match parse("CRON_TZ=Europe/Paris @hourly") {
            Ok(Parsed::Spec {
                minute, location, ..
            }) => {
                assert_eq!(minute, 1);
                assert_eq!(location.as_deref(), Some("Europe/Paris"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn locations() {
        assert!(load_location("Europe/Paris").is_some());
        assert!(load_location("europe/paris").is_none());
        assert!(load_location("Mars/Olympus").is_none());
        assert_eq!(load_location(""), Some(jiff::tz::TimeZone::UTC));
        assert!(load_location("Local").is_some());
        assert_eq!(
            parse_standard("TZ=Nowhere/Town * * * * *"),
            Err("provided bad location Nowhere/Town: unknown time zone Nowhere/Town".into())
        );
        assert_eq!(parse_standard("CRON_TZ=Asia/Tokyo 0 9 * * *"), Ok(()));
    }
}
