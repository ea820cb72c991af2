//! `parse_time(pattern, ms[, zone])`: formats epoch milliseconds with a
//! Joda-Time / Java `DateTimeFormatter` style pattern. `timestamp()` needs
//! no code here: the runtime passes the message time in.
//!
//! Supported pattern letters (count = repetitions):
//! - `G` era (`AD`/`BC`)
//! - `y`, `Y` year (`yy`: last two digits; otherwise zero-padded to count)
//! - `M` month (`M`/`MM` number, `MMM` `Jan`, `MMMM` `January`)
//! - `d` day of month, `D` day of year
//! - `E` day of week (`E`..`EEE` `Mon`, `EEEE` `Monday`), `e` its number (Monday = 1)
//! - `a` `AM`/`PM`
//! - `H` hour 0–23, `k` 1–24, `h` 1–12, `K` 0–11, `m` minute, `s` second
//! - `S` fraction of second (milliseconds, truncated or zero-extended to count)
//! - `Z` offset (`+0000`; `ZZ` `+00:00`; `ZZZ` zone id), `z` zone name
//!   (`UTC`, or the offset; `zzzz` `Coordinated Universal Time`)
//! - `'text'` literal text, `''` a quote; other non-letters are literal.
//!
//! Other letters are refused. Zones: `UTC`, `GMT`, `Z`, `Etc/UTC`,
//! `Etc/GMT` and fixed offsets (`+05:30`, `-0800`, `+05`, `UTC+01:00`);
//! named regional zones (`America/Belize`) are not supported, as civitas
//! carries no time-zone database.

use crate::value::{Num, Value};
use ::time::{OffsetDateTime, UtcOffset};

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Literal(String),
    Field(char, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    items: Vec<Item>,
}

const LETTERS: &str = "GyYMdDEeaHkhKmsSZz";

impl Pattern {
    pub(crate) fn compile(pattern: &str) -> Result<Pattern, String> {
        let mut items = Vec::new();
        let mut literal = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    literal.push('\'');
                    continue;
                }
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            literal.push('\'');
                        }
                        Some('\'') => break,
                        Some(ch) => literal.push(ch),
                        None => return Err("unterminated quote in the time pattern".to_owned()),
                    }
                }
            } else if c.is_ascii_alphabetic() {
                if !LETTERS.contains(c) {
                    return Err(format!(
                        "unsupported letter '{c}' in the time pattern (supported: {LETTERS})"
                    ));
                }
                let mut count = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    count += 1;
                }
                if !literal.is_empty() {
                    items.push(Item::Literal(std::mem::take(&mut literal)));
                }
                items.push(Item::Field(c, count));
            } else {
                literal.push(c);
            }
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        Ok(Pattern { items })
    }

    fn format(&self, t: &OffsetDateTime, zone: &Zone) -> String {
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Literal(s) => out.push_str(s),
                Item::Field(c, n) => field(&mut out, *c, *n, t, zone),
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Zone {
    offset: UtcOffset,
    utc: bool,
}

impl Zone {
    pub(crate) fn utc() -> Zone {
        Zone {
            offset: UtcOffset::UTC,
            utc: true,
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Zone> {
        let s = s.trim();
        if ["UTC", "GMT", "Z", "Etc/UTC", "Etc/GMT"]
            .iter()
            .any(|z| z.eq_ignore_ascii_case(s))
        {
            return Some(Zone::utc());
        }
        let offset = s
            .strip_prefix("UTC")
            .or_else(|| s.strip_prefix("GMT"))
            .unwrap_or(s);
        let (sign, rest) = match offset.as_bytes().first()? {
            b'+' => (1, &offset[1..]),
            b'-' => (-1, &offset[1..]),
            _ => return None,
        };
        let (h, m) = match rest.len() {
            2 => (rest, "00"),
            4 => rest.split_at(2),
            5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
            _ => return None,
        };
        if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
        if h > 23 || m > 59 {
            return None;
        }
        let offset = UtcOffset::from_hms(sign * h, sign * m, 0).ok()?;
        Some(Zone {
            offset,
            utc: offset.is_utc(),
        })
    }

    fn offset_text(&self, colon: bool) -> String {
        let (h, m, _) = self.offset.as_hms();
        let sign = if self.offset.is_negative() { '-' } else { '+' };
        let sep = if colon { ":" } else { "" };
        format!("{sign}{:02}{sep}{:02}", h.unsigned_abs(), m.unsigned_abs())
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn pad(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", value.unsigned_abs()));
}

fn field(out: &mut String, c: char, n: usize, t: &OffsetDateTime, zone: &Zone) {
    let hour = i64::from(t.hour());
    match c {
        'G' => out.push_str(if t.year() > 0 { "AD" } else { "BC" }),
        'y' | 'Y' if n == 2 => pad(out, i64::from(t.year()).rem_euclid(100), 2),
        'y' | 'Y' => pad(out, i64::from(t.year()), n),
        'M' if n >= 4 => out.push_str(MONTHS[usize::from(u8::from(t.month())) - 1]),
        'M' if n == 3 => out.push_str(&MONTHS[usize::from(u8::from(t.month())) - 1][..3]),
        'M' => pad(out, i64::from(u8::from(t.month())), n),
        'd' => pad(out, i64::from(t.day()), n),
        'D' => pad(out, i64::from(t.ordinal()), n),
        'E' => {
            let day = DAYS[usize::from(t.weekday().number_days_from_monday())];
            out.push_str(if n >= 4 { day } else { &day[..3] });
        }
        'e' => pad(out, i64::from(t.weekday().number_from_monday()), n),
        'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
        'H' => pad(out, hour, n),
        'k' => pad(out, if hour == 0 { 24 } else { hour }, n),
        'h' => pad(out, if hour % 12 == 0 { 12 } else { hour % 12 }, n),
        'K' => pad(out, hour % 12, n),
        'm' => pad(out, i64::from(t.minute()), n),
        's' => pad(out, i64::from(t.second()), n),
        'S' => {
            let ms = format!("{:03}", t.millisecond());
            if n <= 3 {
                out.push_str(&ms[..n]);
            } else {
                out.push_str(&ms);
                out.extend(std::iter::repeat_n('0', n - 3));
            }
        }
        'Z' if n == 1 => out.push_str(&zone.offset_text(false)),
        'Z' if n == 2 => out.push_str(&zone.offset_text(true)),
        'Z' | 'z' if zone.utc => out.push_str(if c == 'z' && n >= 4 {
            "Coordinated Universal Time"
        } else {
            "UTC"
        }),
        _ => out.push_str(&zone.offset_text(true)),
    }
}

pub(super) fn parse_time(pattern: Option<&Pattern>, zone: Option<&Zone>, args: &[Value]) -> Value {
    let compiled;
    let pattern = match pattern {
        Some(p) => p,
        None => match args[0].to_sql_string().map(|p| Pattern::compile(&p)) {
            Some(Ok(p)) => {
                compiled = p;
                &compiled
            }
            _ => return Value::Undefined,
        },
    };
    let ms = match args[1].to_num() {
        Some((Num::Int(n), _)) => i128::from(n),
        Some((Num::Dec(x), _)) => x.trunc() as i128,
        None => return Value::Undefined,
    };
    let parsed;
    let zone = match zone {
        Some(z) => z,
        None => match args
            .get(2)
            .and_then(Value::to_sql_string)
            .and_then(|z| Zone::parse(&z))
        {
            Some(z) => {
                parsed = z;
                &parsed
            }
            None => return Value::Undefined,
        },
    };
    let time = OffsetDateTime::from_unix_timestamp_nanos(ms.saturating_mul(1_000_000))
        .ok()
        .and_then(|t| t.checked_to_offset(zone.offset));
    match time {
        Some(t) => Value::String(pattern.format(&t, zone)),
        None => Value::Undefined,
    }
}
