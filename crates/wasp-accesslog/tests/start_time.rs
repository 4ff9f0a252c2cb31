//! `%START_TIME%` and `%START_TIME(FORMAT)%`, in UTC.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{full, text};
use wasp_accesslog::{Entry, Format};

fn at(seconds: u64, nanos: u32, format: &str) -> String {
    let entry = Entry::new(UNIX_EPOCH + Duration::new(seconds, nanos));
    text(format, &entry)
}

#[test]
fn default_is_rfc3339_with_truncated_milliseconds() {
    // .345678901 s: milliseconds truncated, not rounded.
    assert_eq!(text("%START_TIME%", &full()), "2026-12-06T23:37:12.345Z");
    assert_eq!(text("%START_TIME()%", &full()), "2026-12-06T23:37:12.345Z");
    assert_eq!(at(0, 0, "%START_TIME%"), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        at(0, 999_999_999, "%START_TIME%"),
        "1970-01-01T00:00:00.999Z"
    );
}

#[test]
fn envoy_docs_examples() {
    assert_eq!(
        text("%START_TIME(%Y/%m/%dT%H:%M:%S%z %s)%", &full()),
        "2026/12/06T23:37:12+0000 1796600232"
    );
    assert_eq!(text("%START_TIME(%s.%3f)%", &full()), "1796600232.345");
    assert_eq!(text("%START_TIME(%s.%6f)%", &full()), "1796600232.345678");
    assert_eq!(
        text("%START_TIME(%s.%9f)%", &full()),
        "1796600232.345678901"
    );
}

#[test]
fn fractions_of_every_width() {
    assert_eq!(
        text("%START_TIME(%f|%1f|%2f|%3f|%4f|%5f|%7f|%8f|%9f)%", &full()),
        "345678901|3|34|345|3456|34567|3456789|34567890|345678901"
    );
    // Leading zeros are digits too.
    assert_eq!(at(1, 5_000_000, "%START_TIME(%3f %f)%"), "005 005000000");
}

#[test]
fn strftime_specifiers() {
    assert_eq!(
        text("%START_TIME(%Y-%m-%d %H:%M:%S|%e|%F %T|%D %R)%", &full()),
        "2026-12-06 23:37:12| 6|2026-12-06 23:37:12|12/06/26 23:37"
    );
    // `date -u -d 2026-12-06T23:37:12Z +'%j %a %A %b %B %u %w %y %I %p'`.
    assert_eq!(
        text("%START_TIME(%j %a %A %b %h %B %u %w %y %I %p %Z)%", &full()),
        "340 Sun Sunday Dec Dec December 7 0 26 11 PM UTC"
    );
    // A leap day: `date -u -d @1709211909 +'%j %a %A %b %B %u %w %y %e %I %p'`.
    assert_eq!(
        at(
            1_709_211_909,
            0,
            "%START_TIME(%F %j %a %A %b %B %u %w %y %e %I %p)%"
        ),
        "2024-02-29 060 Thu Thursday Feb February 4 4 24 29 01 PM"
    );
    assert_eq!(
        text("%START_TIME(%E3S|%E0S|%E*S|%Ez|%%|%t)%", &full()),
        "12.345|12|12.345678901|+00:00|%|\t"
    );
    assert_eq!(at(7, 500_000_000, "%START_TIME(%E*S)%"), "07.5");
    assert_eq!(at(7, 0, "%START_TIME(%E*S)%"), "07");
}

#[test]
fn unimplemented_specifiers_are_copied_as_written() {
    assert_eq!(text("%START_TIME(%Q %-d %C x%)%", &full()), "%Q %-d %C x%");
}

#[test]
fn before_the_epoch() {
    // 1969-07-20T20:17:39.5Z is 14182939.5 s before the epoch.
    let entry = Entry::new(UNIX_EPOCH - Duration::new(14_182_939, 500_000_000));
    assert_eq!(text("%START_TIME%", &entry), "1969-07-20T20:17:40.500Z");
    assert_eq!(text("%START_TIME(%s %3f)%", &entry), "-14182940 500");
}

#[test]
fn every_day_for_two_centuries_follows_the_previous_one() {
    fn leap(year: u32) -> bool {
        year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
    }
    fn days_in(year: u32, month: u32) -> u32 {
        match month {
            2 if leap(year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }
    let format = Format::text("%START_TIME(%Y %m %d %j)%").expect("parses");
    let (mut year, mut month, mut day, mut day_of_year) = (1970, 1, 1, 1);
    for days in 0..(200 * 365 + 48) {
        let entry = Entry::new(UNIX_EPOCH + Duration::from_secs(days * 86_400 + 43_200));
        assert_eq!(
            format.render(&entry),
            format!("{year:04} {month:02} {day:02} {day_of_year:03}"),
            "{days} days after the epoch"
        );
        day += 1;
        day_of_year += 1;
        if day > days_in(year, month) {
            (day, month) = (1, month + 1);
        }
        if month > 12 {
            (month, year, day_of_year) = (1, year + 1, 1);
        }
    }
    assert_eq!(year, 2169);
}
