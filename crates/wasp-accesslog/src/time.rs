//! `%START_TIME%` and `%START_TIME(FORMAT)%`: UTC times written without a time-zone library.
//!
//! Envoy formats START_TIME with its `DateFormatter` (`source/common/common/utility.cc`): it
//! substitutes its own `%f`/`%1f`..`%9f` (fraction of the second, truncated, not rounded) and
//! `%s` (seconds since the epoch), and hands the rest to `absl::FormatTime` in UTC. Without a
//! format it uses `%Y-%m-%dT%H:%M:%E3SZ`, e.g. `2026-12-06T23:37:12.345Z`.
//!
//! This module implements the specifiers access-log formats use: `%Y %m %d %e %H %M %S %z %s %f
//! %1f..%9f`, plus the cheap conveniences `%y %j %F %T %D %R %I %p %a %A %b %h %B %u %w %Z %Ez
//! %E#S %E*S %t %%`, all in UTC and the C locale. Any other specifier (including strftime flags
//! such as `%-d`) is copied to the output as written, so an unusual format shows up in the log
//! instead of failing the configuration. The civil date is computed with Howard Hinnant's
//! days-from-civil arithmetic, which keeps the crate free of a date-time dependency for the
//! few specifiers logs need.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A parsed START_TIME format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeFormat {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Sep(&'static str),
    Year,
    Year2,
    Month,
    Day,
    DaySpace,
    DayOfYear,
    Hour,
    Hour12,
    AmPm,
    Minute,
    Second,
    /// `%E#S`: seconds, then `.` and that many fraction digits (none: no dot).
    SecondFraction(u8),
    /// `%E*S`: seconds, then as many fraction digits as are not trailing zeros.
    SecondFull,
    /// `%f` (9 digits) and `%1f`..`%9f`: the first digits of the nanoseconds, truncated.
    Fraction(u8),
    Epoch,
    Offset,
    OffsetColon,
    Zone,
    WeekdayShort,
    WeekdayLong,
    WeekdayFromMonday,
    WeekdayFromSunday,
    MonthShort,
    MonthLong,
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
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

impl TimeFormat {
    /// Envoy's default: RFC 3339 with milliseconds, UTC, `Z`.
    pub(crate) fn default_format() -> TimeFormat {
        // The default is a constant; its parse cannot fail (a test renders it).
        TimeFormat::parse("%Y-%m-%dT%H:%M:%E3SZ").unwrap_or(TimeFormat { pieces: Vec::new() })
    }

    /// Parses a strftime-style format; the error is the reason, for the caller to place.
    pub(crate) fn parse(format: &str) -> Result<TimeFormat, String> {
        // Envoy rejects a newline specifier (its pattern `%[-_0^#]*[1-9]*(E|O)?n`): the same
        // formatter fills headers, where a newline would split the header.
        if has_newline_specifier(format) {
            return Err("a START_TIME format cannot contain a newline (%n)".to_owned());
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = format;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            let spec = &rest[at + 1..];
            rest = match specifier(spec.as_bytes()) {
                // Not implemented: the `%` is copied, and the letter after it with the text.
                None => {
                    literal.push('%');
                    spec
                }
                Some((Spec::Text(text), used)) => {
                    literal.push_str(text);
                    &spec[used..]
                }
                Some((Spec::Piece(piece), used)) => {
                    flush(&mut pieces, &mut literal);
                    pieces.push(piece);
                    &spec[used..]
                }
                Some((Spec::Pieces(expansion), used)) => {
                    flush(&mut pieces, &mut literal);
                    pieces.extend_from_slice(expansion);
                    &spec[used..]
                }
            };
        }
        literal.push_str(rest);
        flush(&mut pieces, &mut literal);
        Ok(TimeFormat { pieces })
    }

    /// Appends `time`, formatted, to `out`.
    pub(crate) fn render(&self, time: SystemTime, out: &mut String) {
        let (seconds, nanos) = split(time);
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        );
        let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
        let month_name = MONTHS[month as usize - 1];
        let nanos_text = format!("{nanos:09}");
        for piece in &self.pieces {
            // Writing to a String cannot fail.
            let _ = match piece {
                Piece::Literal(text) => {
                    out.push_str(text);
                    Ok(())
                }
                Piece::Sep(text) => {
                    out.push_str(text);
                    Ok(())
                }
                Piece::Year if year >= 0 => write!(out, "{year:04}"),
                Piece::Year => write!(out, "{year}"),
                Piece::Year2 => write!(out, "{:02}", year.rem_euclid(100)),
                Piece::Month => write!(out, "{month:02}"),
                Piece::Day => write!(out, "{day:02}"),
                Piece::DaySpace => write!(out, "{day:2}"),
                Piece::DayOfYear => write!(out, "{:03}", days - days_from_civil(year, 1, 1) + 1),
                Piece::Hour => write!(out, "{hour:02}"),
                Piece::Hour12 => write!(out, "{:02}", (hour + 11) % 12 + 1),
                Piece::AmPm => write!(out, "{}", if hour < 12 { "AM" } else { "PM" }),
                Piece::Minute => write!(out, "{minute:02}"),
                Piece::Second => write!(out, "{second:02}"),
                Piece::SecondFraction(0) => write!(out, "{second:02}"),
                Piece::SecondFraction(digits) => {
                    write!(out, "{second:02}.{}", &nanos_text[..usize::from(*digits)])
                }
                Piece::SecondFull => {
                    let fraction = nanos_text.trim_end_matches('0');
                    if fraction.is_empty() {
                        write!(out, "{second:02}")
                    } else {
                        write!(out, "{second:02}.{fraction}")
                    }
                }
                Piece::Fraction(digits) => {
                    out.push_str(&nanos_text[..usize::from(*digits)]);
                    Ok(())
                }
                Piece::Epoch => write!(out, "{seconds}"),
                Piece::Offset => write!(out, "+0000"),
                Piece::OffsetColon => write!(out, "+00:00"),
                Piece::Zone => write!(out, "UTC"),
                Piece::WeekdayShort => write!(out, "{}", &WEEKDAYS[weekday][..3]),
                Piece::WeekdayLong => write!(out, "{}", WEEKDAYS[weekday]),
                Piece::WeekdayFromMonday => write!(out, "{}", (weekday + 6) % 7 + 1),
                Piece::WeekdayFromSunday => write!(out, "{weekday}"),
                Piece::MonthShort => write!(out, "{}", &month_name[..3]),
                Piece::MonthLong => write!(out, "{month_name}"),
            };
        }
    }
}

/// What a specifier (the bytes after `%`) stands for, and how many bytes it takes.
enum Spec {
    Text(&'static str),
    Piece(Piece),
    Pieces(&'static [Piece]),
}

const DATE: &[Piece] = &[
    Piece::Year,
    Piece::Sep("-"),
    Piece::Month,
    Piece::Sep("-"),
    Piece::Day,
];
const TIME: &[Piece] = &[
    Piece::Hour,
    Piece::Sep(":"),
    Piece::Minute,
    Piece::Sep(":"),
    Piece::Second,
];
const US_DATE: &[Piece] = &[
    Piece::Month,
    Piece::Sep("/"),
    Piece::Day,
    Piece::Sep("/"),
    Piece::Year2,
];
const HOUR_MINUTE: &[Piece] = &[Piece::Hour, Piece::Sep(":"), Piece::Minute];

/// `None`: not implemented, copied as written.
fn specifier(spec: &[u8]) -> Option<(Spec, usize)> {
    use Piece::*;
    let one = |piece: Piece| Some((Spec::Piece(piece), 1));
    match spec {
        // Envoy's own: `%1f`..`%9f`.
        [digit @ b'1'..=b'9', b'f', ..] => Some((Spec::Piece(Fraction(digit - b'0')), 2)),
        // absl's: `%E0S`..`%E9S`, `%E*S`, `%Ez`.
        [b'E', digit @ b'0'..=b'9', b'S', ..] => {
            Some((Spec::Piece(SecondFraction(digit - b'0')), 3))
        }
        [b'E', b'*', b'S', ..] => Some((Spec::Piece(SecondFull), 3)),
        [b'E', b'z', ..] => Some((Spec::Piece(OffsetColon), 2)),
        [b'%', ..] => Some((Spec::Text("%"), 1)),
        [b't', ..] => Some((Spec::Text("\t"), 1)),
        [b'F', ..] => Some((Spec::Pieces(DATE), 1)),
        [b'T', ..] => Some((Spec::Pieces(TIME), 1)),
        [b'D', ..] => Some((Spec::Pieces(US_DATE), 1)),
        [b'R', ..] => Some((Spec::Pieces(HOUR_MINUTE), 1)),
        [b'Y', ..] => one(Year),
        [b'y', ..] => one(Year2),
        [b'm', ..] => one(Month),
        [b'd', ..] => one(Day),
        [b'e', ..] => one(DaySpace),
        [b'j', ..] => one(DayOfYear),
        [b'H', ..] => one(Hour),
        [b'I', ..] => one(Hour12),
        [b'p', ..] => one(AmPm),
        [b'M', ..] => one(Minute),
        [b'S', ..] => one(Second),
        [b'f', ..] => one(Fraction(9)),
        [b's', ..] => one(Epoch),
        [b'z', ..] => one(Offset),
        [b'Z', ..] => one(Zone),
        [b'a', ..] => one(WeekdayShort),
        [b'A', ..] => one(WeekdayLong),
        [b'u', ..] => one(WeekdayFromMonday),
        [b'w', ..] => one(WeekdayFromSunday),
        [b'b' | b'h', ..] => one(MonthShort),
        [b'B', ..] => one(MonthLong),
        _ => None,
    }
}

fn flush(pieces: &mut Vec<Piece>, literal: &mut String) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal)));
    }
}

/// Envoy's `%[-_0^#]*[1-9]*(E|O)?n`, searched anywhere in the format.
fn has_newline_specifier(format: &str) -> bool {
    format.match_indices('%').any(|(at, _)| {
        let rest = format[at + 1..].trim_start_matches(['-', '_', '0', '^', '#']);
        let rest = rest.trim_start_matches(|c: char| ('1'..='9').contains(&c));
        let rest = rest.strip_prefix(['E', 'O']).unwrap_or(rest);
        rest.starts_with('n')
    })
}

/// Seconds since the epoch (floored, so times before 1970 work) and the nanoseconds after them.
fn split(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let seconds = -i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (seconds, 0),
                nanos => (seconds - 1, 1_000_000_000 - nanos),
            }
        }
    }
}

/// Year, month (1-12) and day (1-31) of a day counted from 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
