//! Kubernetes names (DNS-1123 subdomains and labels) and RFC 3339 timestamps.

use super::Timestamp;

/// A Kubernetes object name: a DNS-1123 subdomain.
pub(super) fn check_dns_subdomain(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name `{name}`: expected lowercase letters, digits, '-' and '.', starting and \
             ending with a letter or digit (at most 253 characters)"
        ))
    }
}

/// A namespace: a DNS-1123 label.
pub(super) fn check_dns_label(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid namespace `{name}`: expected lowercase letters, digits and '-', starting \
             and ending with a letter or digit (at most 63 characters)"
        ))
    }
}

/// RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`) to UTC.
pub fn parse_rfc3339(text: &str) -> std::result::Result<Timestamp, String> {
    let bad =
        || format!("invalid timestamp `{text}`: expected RFC 3339, such as 2024-05-01T12:00:00Z");
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> std::result::Result<i64, String> {
        let s = text.get(from..from + len).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &text[start..i];
        if frac.is_empty() {
            return Err(bad());
        }
        let mut scale = 100_000_000u32;
        for c in frac.bytes().take(9) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
        }
    }
    let offset = match &text[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h = digits(i + 1, 2)?;
            let m = digits(i + 4, 2)?;
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad()),
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(Timestamp {
        seconds: days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00Z"),
            Ok(Timestamp {
                seconds: 0,
                nanos: 0
            })
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00Z").unwrap().seconds,
            1_714_564_800
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00.25+02:00"),
            Ok(Timestamp {
                seconds: 1_714_564_800,
                nanos: 250_000_000
            })
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-02-30T00:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(check_dns_subdomain("auth").is_ok());
        assert!(check_dns_subdomain("a.b-c").is_ok());
        assert!(check_dns_subdomain("Auth").is_err());
        assert!(check_dns_subdomain("-a").is_err());
        assert!(check_dns_label("istio-system").is_ok());
        assert!(check_dns_label("a.b").is_err());
    }
}
