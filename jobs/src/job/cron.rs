//! Five-field cron expressions (`minute hour day-of-month month day-of-week`, UTC) for checksum
//! schedules: `*`, numbers, lists `1,15`, ranges `1-5`, steps `*/10` and `8-18/2`. As in cron,
//! when both day fields are restricted a day matches either.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_core::layout::civil_from_days;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, name: &str, low: u32, high: u32) -> Result<(Vec<bool>, bool), String> {
    let mut set = vec![false; high as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step `{s}` in the {name} field"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            let p = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| format!("`{v}` is not a number in the {name} field"))
            };
            (p(a)?, p(b)?)
        } else {
            let v = range
                .parse::<u32>()
                .map_err(|_| format!("`{range}` is not a number in the {name} field"))?;
            (v, if step > 1 { high } else { v })
        };
        if a < low || b > high || a > b {
            return Err(format!("{name} `{range}` is outside {low}-{high}"));
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok((set, text != "*"))
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [mi, h, d, mo, w] = parts[..] else {
            return Err(format!(
                "`{text}` needs five fields: minute hour day-of-month month day-of-week"
            ));
        };
        let (minutes, _) = field(mi, "minute", 0, 59)?;
        let (hours, _) = field(h, "hour", 0, 23)?;
        let (days, days_restricted) = field(d, "day-of-month", 1, 31)?;
        let (months, _) = field(mo, "month", 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(w, "day-of-week", 0, 7)?;
        // 7 is Sunday too.
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Cron {
            text: text.to_owned(),
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn matches(&self, unix_minute: u64) -> bool {
        let days_since = (unix_minute / 1440) as i64;
        let (_, month, day) = civil_from_days(days_since);
        let weekday = ((days_since + 4).rem_euclid(7)) as usize; // 1970-01-01 was a Thursday
        let minute = (unix_minute % 60) as usize;
        let hour = (unix_minute / 60 % 24) as usize;
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => self.days[day as usize] || self.weekdays[weekday],
            _ => self.days[day as usize] && self.weekdays[weekday],
        };
        self.minutes[minute] && self.hours[hour] && self.months[month as usize] && day_ok
    }

    /// The next matching minute after `now`.
    pub fn next_after(&self, now: SystemTime) -> Option<SystemTime> {
        let minute = now.duration_since(UNIX_EPOCH).ok()?.as_secs() / 60;
        (minute + 1..minute + 366 * 24 * 60 * 5)
            .find(|m| self.matches(*m))
            .map(|m| UNIX_EPOCH + Duration::from_secs(m * 60))
    }
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn finds_the_next_minute() {
        // 2026-12-01 18:32:00 UTC is 1796149920.
        let now = at(1_796_149_920);
        let every10 = Cron::parse("*/10 * * * *").unwrap();
        assert_eq!(every10.next_after(now), Some(at(1_796_149_920 + 8 * 60)));
        let daily = Cron::parse("0 3 * * *").unwrap();
        let next = daily.next_after(now).unwrap();
        let secs = next.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs % 86_400, 3 * 3600);
        let monday = Cron::parse("30 8 * * 1").unwrap();
        let days = monday
            .next_after(now)
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        assert_eq!((days + 4) % 7, 1);
        assert!(Cron::parse("* * * *").is_err());
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("*/0 * * * *").is_err());
        assert!(Cron::parse("a * * * *").is_err());
    }
}
