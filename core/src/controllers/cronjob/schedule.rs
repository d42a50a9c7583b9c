//! When a CronJob runs: robfig/cron's `Schedule.Next` over the parsed fields (see
//! [`crate::validation::cron`]) in the schedule's time zone, and the cronjob controller's
//! `mostRecentScheduleTime`, `nextScheduleTime` and `nextScheduleTimeDuration` (utils.go), which
//! find the latest missed run without walking every missed slot, and when to look again.

use crate::validation::cron::{self, Parsed, STAR_BIT};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan, Zoned};
use std::time::Duration;

/// Padding added to the next requeue (upstream's `nextScheduleDelta`, for clock skew).
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// A schedule ready to compute run times.
#[derive(Debug, Clone)]
pub enum Schedule {
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        tz: TimeZone,
    },
    Every(Duration),
}

/// How many runs were missed since the last one (upstream's `missedSchedulesType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

impl Schedule {
    /// `cron.ParseStandard(spec)`: a `TZ=`/`CRON_TZ=` prefix names the zone, otherwise `local`
    /// (the zone kube-controller-manager runs in) is used.
    pub fn parse(spec: &str, local: &TimeZone) -> Result<Schedule, String> {
        match cron::parse(spec)? {
            Parsed::Every(d) => Ok(Schedule::Every(d)),
            Parsed::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
                location,
            } => {
                let tz = match location {
                    None => local.clone(),
                    Some(name) => load_location(&name)
                        .map_err(|e| format!("provided bad location {name}: {e}"))?,
                };
                Ok(Schedule::Spec {
                    minute,
                    hour,
                    dom,
                    month,
                    dow,
                    tz,
                })
            }
        }
    }

    /// The first activation strictly after `t` (robfig's `Next`); None when there is none in
    /// the next five years (robfig's zero time), e.g. for `0 0 31 2 *`.
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Every(d) => {
                let nanos = i64::from(t.subsec_nanosecond());
                t.checked_add(jiff::SignedDuration::try_from(*d).ok()?)
                    .ok()?
                    .checked_sub(jiff::SignedDuration::from_nanos(nanos))
                    .ok()
            }
            Schedule::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
                tz,
            } => next_spec(t, tz, [*minute, *hour, *dom, *month, *dow]),
        }
    }
}

/// Go's `time.LoadLocation` (see [`cron::load_location`]), with its error text.
pub fn load_location(name: &str) -> Result<TimeZone, String> {
    cron::load_location(name).ok_or_else(|| format!("unknown time zone {name}"))
}

fn bit(set: u64, v: i8) -> bool {
    (0..63).contains(&v) && set & (1u64 << v) != 0
}

fn civil(z: &Zoned, day: i8, hour: i8, tz: &TimeZone) -> Option<Zoned> {
    Date::new(z.year(), z.month(), day)
        .ok()?
        .at(hour, 0, 0, 0)
        .to_zoned(tz.clone())
        .ok()
}

fn add(z: &Zoned, span: Span) -> Option<Zoned> {
    z.checked_add(span).ok()
}

/// robfig's `SpecSchedule.Next` (seconds fixed at 0, as in the five-field dialect).
fn next_spec(t: Timestamp, tz: &TimeZone, fields: [u64; 5]) -> Option<Timestamp> {
    let [minute, hour, dom, month, dow] = fields;
    let day_matches = |z: &Zoned| {
        let d = bit(dom, z.day());
        let w = bit(dow, z.weekday().to_sunday_zero_offset());
        if dom & STAR_BIT != 0 || dow & STAR_BIT != 0 {
            d && w
        } else {
            d || w
        }
    };
    let truncate = |z: &Zoned, unit: i64| -> Option<Zoned> {
        let s = z.timestamp().as_second();
        Timestamp::from_second(s - s.rem_euclid(unit))
            .ok()
            .map(|ts| ts.to_zoned(tz.clone()))
    };
    // The upcoming whole second.
    let start = t.to_zoned(tz.clone());
    let mut z = add(
        &start,
        (1_000_000_000 - i64::from(start.subsec_nanosecond())).nanoseconds(),
    )?;
    let mut added = false;
    let year_limit = z.year() + 5;
    'wrap: loop {
        if z.year() > year_limit {
            return None;
        }
        while !bit(month, z.month()) {
            if !added {
                added = true;
                z = civil(&z, 1, 0, tz)?;
            }
            z = add(&z, 1.month())?;
            if z.month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(&z) {
            if !added {
                added = true;
                z = civil(&z, z.day(), 0, tz)?;
            }
            z = add(&z, 1.day())?;
            // Midnight may not exist (DST): move back to it.
            let h = i64::from(z.hour());
            if h != 0 {
                z = if h > 12 {
                    add(&z, (24 - h).hours())?
                } else {
                    add(&z, (-h).hours())?
                };
            }
            if z.day() == 1 {
                continue 'wrap;
            }
        }
        while !bit(hour, z.hour()) {
            if !added {
                added = true;
                z = civil(&z, z.day(), z.hour(), tz)?;
            }
            z = add(&z, 1.hour())?;
            if z.hour() == 0 {
                continue 'wrap;
            }
        }
        while !bit(minute, z.minute()) {
            if !added {
                added = true;
                z = truncate(&z, 60)?;
            }
            z = add(&z, 1.minute())?;
            if z.minute() == 0 {
                continue 'wrap;
            }
        }
        while z.second() != 0 {
            if !added {
                added = true;
                z = truncate(&z, 1)?;
            }
            z = add(&z, 1.second())?;
            if z.second() == 0 {
                continue 'wrap;
            }
        }
        return Some(z.timestamp());
    }
}

/// What `mostRecentScheduleTime` finds: the time counted from (last schedule time or
/// creation), the most recent run time not after `now` (None if none is due) and how many were
/// missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recent {
    pub earliest: Timestamp,
    pub most_recent: Option<Timestamp>,
    pub missed: Missed,
}

/// The CronJob facts the schedule math reads.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub created: Timestamp,
    pub last_schedule: Option<Timestamp>,
    pub starting_deadline_seconds: Option<i64>,
}

const SCHEDULE_ERROR: &str = "time difference between two schedules is less than 1 second";

/// Upstream's `mostRecentScheduleTime`. Err for a schedule that never fires (31 February).
pub fn most_recent_schedule_time(
    cj: &Times,
    now: Timestamp,
    schedule: &Schedule,
    include_starting_deadline: bool,
) -> Result<Recent, String> {
    let mut earliest = cj.last_schedule.unwrap_or(cj.created);
    if include_starting_deadline {
        if let Some(sds) = cj.starting_deadline_seconds {
            let deadline = now
                .checked_sub(jiff::SignedDuration::from_secs(sds))
                .unwrap_or(now);
            if deadline > earliest {
                earliest = deadline;
            }
        }
    }
    let none = Recent {
        earliest,
        most_recent: None,
        missed: Missed::None,
    };
    let (Some(t1), Some(t2)) = (
        schedule.next(earliest),
        schedule.next(earliest).and_then(|t| schedule.next(t)),
    ) else {
        return Err(SCHEDULE_ERROR.into());
    };
    if now < t1 {
        return Ok(none);
    }
    if now < t2 {
        return Ok(Recent {
            most_recent: Some(t1),
            ..none
        });
    }
    // Go's `Duration.Round(time.Second)`: halves away from zero.
    let gap = t2.duration_since(t1).as_nanos();
    let between = i64::try_from((gap + 500_000_000).div_euclid(1_000_000_000)).unwrap_or(i64::MAX);
    if between < 1 {
        return Err(SCHEDULE_ERROR.into());
    }
    // A rough count of the missed runs, then the exact most recent one from just before it.
    let elapsed = now.duration_since(t1).as_secs();
    let missed_count = elapsed / between + 1;
    let potential = t1
        .checked_add(jiff::SignedDuration::from_secs(
            (missed_count - 2).saturating_mul(between),
        ))
        .map_err(|e| e.to_string())?;
    let mut most_recent = None;
    let mut t = schedule.next(potential);
    while let Some(at) = t.filter(|at| *at <= now) {
        most_recent = Some(at);
        t = schedule.next(at);
    }
    let missed = if missed_count > 100 {
        Missed::Many
    } else if missed_count > 0 {
        Missed::Few
    } else {
        Missed::None
    };
    Ok(Recent {
        earliest,
        most_recent,
        missed,
    })
}

/// Upstream's `nextScheduleTimeDuration`: how long until the next run is due (plus 100 ms);
/// None when the schedule never fires again.
pub fn next_schedule_time_duration(
    cj: &Times,
    now: Timestamp,
    schedule: &Schedule,
) -> Option<Duration> {
    let from = match most_recent_schedule_time(cj, now, schedule, false) {
        Err(_) => now,
        Ok(Recent {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Recent {
            earliest,
            missed: Missed::None,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    let next = schedule.next(from)?;
    let wait = next.duration_since(now);
    let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
    Some(wait + NEXT_SCHEDULE_DELTA)
}

/// Upstream's `nextScheduleTime`: the run to start now, if one is due (Err for a schedule that
/// never fires), and whether too many (> 100) were missed.
pub fn next_schedule_time(
    cj: &Times,
    now: Timestamp,
    schedule: &Schedule,
) -> Result<(Option<Timestamp>, Missed), String> {
    let recent = most_recent_schedule_time(cj, now, schedule, true)?;
    match recent.most_recent {
        Some(t) if t <= now => Ok((Some(t), recent.missed)),
        _ => Ok((None, recent.missed)),
    }
}

/// `<cronjob>-<scheduled time in minutes since the epoch>` (upstream's `getJobName`).
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The scheduled time in the CronJob's zone as Go's RFC 3339 (`Z` for UTC).
pub fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        return jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", &z).unwrap_or_default();
    }
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%:z", &z).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn utc(spec: &str) -> Schedule {
        Schedule::parse(spec, &TimeZone::UTC).expect("schedule")
    }

    fn times(created: &str, last: Option<&str>, sds: Option<i64>) -> Times {
        Times {
            created: ts(created),
            last_schedule: last.map(ts),
            starting_deadline_seconds: sds,
        }
    }

    #[test]
    fn next_times() {
        let s = utc("* * * * *");
        assert_eq!(
            s.next(ts("2024-05-01T10:00:00Z")),
            Some(ts("2024-05-01T10:01:00Z"))
        );
        assert_eq!(
            s.next(ts("2024-05-01T10:00:59.5Z")),
            Some(ts("2024-05-01T10:01:00Z"))
        );
        let s = utc("*/15 9-17 * * mon-fri");
        // Friday 17:50 → Monday 09:00.
        assert_eq!(
            s.next(ts("2024-05-03T17:50:00Z")),
            Some(ts("2024-05-06T09:00:00Z"))
        );
        let s = utc("@hourly");
        assert_eq!(
            s.next(ts("2024-12-31T23:30:00Z")),
            Some(ts("2025-01-01T00:00:00Z"))
        );
        let s = utc("0 0 29 2 *");
        assert_eq!(
            s.next(ts("2024-03-01T00:00:00Z")),
            Some(ts("2028-02-29T00:00:00Z"))
        );
        assert_eq!(utc("0 0 31 2 *").next(ts("2024-01-01T00:00:00Z")), None);
        // Day of month and day of week both restricted: either matches (OR).
        let s = utc("0 0 13 * 5");
        assert_eq!(
            s.next(ts("2024-09-01T00:00:00Z")),
            Some(ts("2024-09-06T00:00:00Z"))
        );
        // One of them `*`: both must match (AND) — every day here.
        let s = utc("0 0 * * *");
        assert_eq!(
            s.next(ts("2024-09-01T00:00:00Z")),
            Some(ts("2024-09-02T00:00:00Z"))
        );
        let s = utc("@every 90s");
        assert_eq!(
            s.next(ts("2024-09-01T00:00:00.25Z")),
            Some(ts("2024-09-01T00:01:30Z"))
        );
    }

    #[test]
    fn time_zones() {
        let paris = Schedule::parse("TZ=Europe/Paris 30 2 * * *", &TimeZone::UTC).expect("tz");
        // 02:30 in Paris in winter is 01:30 UTC.
        assert_eq!(
            paris.next(ts("2024-01-10T00:00:00Z")),
            Some(ts("2024-01-10T01:30:00Z"))
        );
        // 31 March 2024: 02:30 does not exist in Paris; robfig skips that day.
        assert_eq!(
            paris.next(ts("2024-03-30T12:00:00Z")),
            Some(ts("2024-04-01T00:30:00Z"))
        );
        assert!(Schedule::parse("TZ=Mars/Olympus * * * * *", &TimeZone::UTC)
            .unwrap_err()
            .starts_with("provided bad location Mars/Olympus"));
        assert!(load_location("europe/paris").is_err());
        assert!(load_location("").is_ok());
        let tz = load_location("Asia/Kolkata").expect("tz");
        assert_eq!(
            rfc3339_in(ts("2024-01-10T00:00:00Z"), &tz),
            "2024-01-10T05:30:00+05:30"
        );
        assert_eq!(
            rfc3339_in(ts("2024-01-10T00:00:00Z"), &TimeZone::UTC),
            "2024-01-10T00:00:00Z"
        );
    }

    #[test]
    fn most_recent() {
        let s = utc("*/5 * * * *");
        // Created 10:02, now 10:04: nothing due yet.
        let cj = times("2024-05-01T10:02:00Z", None, None);
        let r = most_recent_schedule_time(&cj, ts("2024-05-01T10:04:00Z"), &s, true).unwrap();
        assert_eq!(r.most_recent, None);
        assert_eq!(r.missed, Missed::None);
        // now 10:06: 10:05 is due.
        let r = most_recent_schedule_time(&cj, ts("2024-05-01T10:06:00Z"), &s, true).unwrap();
        assert_eq!(r.most_recent, Some(ts("2024-05-01T10:05:00Z")));
        // now 11:01: missed several; the latest is 11:00.
        let r = most_recent_schedule_time(&cj, ts("2024-05-01T11:01:00Z"), &s, true).unwrap();
        assert_eq!(r.most_recent, Some(ts("2024-05-01T11:00:00Z")));
        assert_eq!(r.missed, Missed::Few);
        // Days later: too many missed.
        let r = most_recent_schedule_time(&cj, ts("2024-05-03T11:01:00Z"), &s, true).unwrap();
        assert_eq!(r.most_recent, Some(ts("2024-05-03T11:00:00Z")));
        assert_eq!(r.missed, Missed::Many);
        // A starting deadline moves the earliest time forward.
        let cj = times("2024-05-01T10:02:00Z", None, Some(120));
        let r = most_recent_schedule_time(&cj, ts("2024-05-03T11:01:00Z"), &s, true).unwrap();
        assert_eq!(r.earliest, ts("2024-05-03T10:59:00Z"));
        assert_eq!(r.most_recent, Some(ts("2024-05-03T11:00:00Z")));
        assert_eq!(r.missed, Missed::None);
        // Irregular schedules still find the exact latest time.
        let s = utc("30 6-16/4 * * 1-5");
        let cj = times("2024-05-01T00:00:00Z", None, None);
        let r = most_recent_schedule_time(&cj, ts("2024-05-06T12:00:00Z"), &s, true).unwrap();
        assert_eq!(r.most_recent, Some(ts("2024-05-06T10:30:00Z")));
        let never = utc("0 0 31 2 *");
        assert!(most_recent_schedule_time(&cj, ts("2024-05-06T12:00:00Z"), &never, true).is_err());
    }

    #[test]
    fn next_schedule() {
        let s = utc("* * * * *");
        let cj = times("2024-05-01T10:00:30Z", Some("2024-05-01T10:01:00Z"), None);
        let now = ts("2024-05-01T10:01:00.5Z");
        assert_eq!(
            next_schedule_time_duration(&cj, now, &s),
            Some(Duration::from_millis(59_600))
        );
        // Already ran at 10:01.
        assert_eq!(next_schedule_time(&cj, now, &s), Ok((None, Missed::None)));
        let due = times("2024-05-01T10:00:30Z", None, None);
        assert_eq!(
            next_schedule_time(&due, now, &s),
            Ok((Some(ts("2024-05-01T10:01:00Z")), Missed::None))
        );
        let fresh = times("2024-05-01T10:00:30Z", None, None);
        assert_eq!(
            next_schedule_time(&fresh, ts("2024-05-01T10:00:45Z"), &s),
            Ok((None, Missed::None))
        );
        assert_eq!(
            next_schedule_time_duration(&fresh, ts("2024-05-01T10:00:45Z"), &s),
            Some(Duration::from_millis(15_100))
        );
        assert_eq!(
            job_name("hello", ts("2024-05-01T10:01:00Z")),
            "hello-28575961"
        );
    }
}
