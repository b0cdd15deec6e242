//! Wall-clock formatting for the `current_time` tool: RFC 3339 timestamps in UTC or at a fixed
//! offset, without a date-time dependency (civil-from-days arithmetic on the Unix epoch).
//!
//! Named time zones other than UTC are deliberately unsupported.

use std::time::{SystemTime, UNIX_EPOCH};

/// A time zone the tool accepts: UTC or a fixed offset in minutes east of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset(pub i32);

/// Parses `UTC`, `Z`, `GMT` (any case), `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH`, optionally prefixed
/// by `UTC`/`GMT` (e.g. `UTC+02:00`). Offsets are limited to ±23:59.
pub fn parse_offset(tz: &str) -> Option<Offset> {
    let t = tz.trim();
    let upper = t.to_ascii_uppercase();
    if matches!(upper.as_str(), "UTC" | "Z" | "GMT" | "") {
        return Some(Offset(0));
    }
    let t = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"))
        .unwrap_or(&upper);
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    if h.is_empty() || h.len() > 2 || m.is_empty() || m.len() > 2 {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    (h < 24 && m < 60).then_some(Offset(sign * (h * 60 + m)))
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Formats Unix seconds as RFC 3339 at `offset` (`Z` for UTC).
pub fn format_rfc3339(unix: i64, offset: Offset) -> String {
    let local = unix + i64::from(offset.0) * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if offset.0 == 0 {
        out.push('Z');
    } else {
        let sign = if offset.0 < 0 { '-' } else { '+' };
        let abs = offset.0.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60));
    }
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0, Offset(0)), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400, Offset(0)), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000, Offset(0)), "2023-11-14T22:13:20Z");
        assert_eq!(format_rfc3339(1_700_000_000, Offset(120)), "2023-11-15T00:13:20+02:00");
        assert_eq!(format_rfc3339(1_700_000_000, Offset(-330)), "2023-11-14T16:43:20-05:30");
        assert_eq!(format_rfc3339(-1, Offset(0)), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_offsets() {
        assert_eq!(parse_offset("UTC"), Some(Offset(0)));
        assert_eq!(parse_offset("z"), Some(Offset(0)));
        assert_eq!(parse_offset("+02:00"), Some(Offset(120)));
        assert_eq!(parse_offset("-0530"), Some(Offset(-330)));
        assert_eq!(parse_offset("UTC+1"), Some(Offset(60)));
        assert_eq!(parse_offset("+24:00"), None);
        assert_eq!(parse_offset("Europe/Paris"), None);
        assert_eq!(parse_offset("+2:5x"), None);
    }
}
