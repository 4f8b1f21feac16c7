//! The `httpdate` target: `httpdate::parse` and `httpdate::format`.

use std::time::{Duration, UNIX_EPOCH};

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// `parse` never panics; whatever it accepts formats back to a date it parses to the same
/// instant, and a real calendar date comes back exactly as written (after the day name, which
/// `parse` ignores). `format` of any time up to year 9999 round-trips.
pub fn check_httpdate(data: &[u8]) {
    use wschat::internals::httpdate::{format, parse};
    let text = String::from_utf8_lossy(data);
    // IMF-fixdate has four-digit years; parse can step past 9999 (31 Dec 9999 23:59:60).
    let end_of_9999 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    if let Some(time) = parse(&text).filter(|t| *t < end_of_9999) {
        let formatted = format(time);
        assert_eq!(formatted.len(), 29, "{formatted}");
        assert_eq!(
            parse(&formatted),
            Some(time),
            "{formatted} does not parse back"
        );
        let b = text.trim().as_bytes();
        let field = |r: std::ops::Range<usize>| -> u64 {
            std::str::from_utf8(&b[r])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        const MONTHS: [&[u8]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let month = MONTHS
            .iter()
            .position(|m| *m == &b[8..11])
            .expect("a month") as u64
            + 1;
        let (day, year, second) = (field(5..7), field(12..16), field(23..25));
        if day <= days_in_month(year, month) && second <= 59 {
            assert_eq!(&formatted.as_bytes()[5..], &b[5..], "{formatted} vs {text}");
        }
    }
    // Any second from 1970 to the end of 9999.
    if data.len() >= 8 {
        let secs = u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) % 253_402_300_800;
        let time = UNIX_EPOCH + Duration::from_secs(secs);
        let formatted = format(time);
        assert_eq!(parse(&formatted), Some(time), "{formatted} ({secs} s)");
    }
}
