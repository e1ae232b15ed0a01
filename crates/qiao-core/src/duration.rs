//! Human durations (`500ms`, `30s`, `5m`, `1h`, `1d`) and cron schedules in config files.

use std::time::Duration;

/// Parses `<whole number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let fix = "write a whole number and a unit: `500ms`, `30s`, `5m`, `1h` or `1d`";
    if num.is_empty() {
        return Err(format!("duration `{t}` has no number; {fix}"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("duration `{t}` is too large; {fix}"))?;
    let ms_per: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("duration `{t}` has no unit; {fix}")),
        other => return Err(format!("duration `{t}` has unknown unit `{other}`; {fix}")),
    };
    let ms = n
        .checked_mul(ms_per)
        .ok_or_else(|| format!("duration `{t}` is too large; {fix}"))?;
    Ok(Duration::from_millis(ms))
}

/// Parses a cron schedule: five fields (`min hour day month weekday`) or six with
/// seconds first (`0 */5 * * * *`). The scheduler must use this same parser.
pub fn parse_cron(s: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::new()
        .parse(s)
        .map_err(|e| format!("cron schedule `{}` is not valid: {e}", s.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration(" 5m ").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn parses_cron() {
        assert!(parse_cron("0 */5 * * * *").is_ok());
        assert!(parse_cron("*/5 * * * *").is_ok());
        let e = parse_cron("61 * * * *").unwrap_err();
        assert!(e.contains("`61 * * * *`"), "{e}");
        assert!(parse_cron("").is_err());
        assert!(parse_cron("every five minutes").is_err());
    }

    #[test]
    fn rejects_with_fix() {
        for bad in [
            "",
            "s",
            "5",
            "5x",
            "1.5s",
            "-1s",
            "99999999999999999999s",
            "18446744073709551615d",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("`30s`"), "{bad}: {e}");
        }
    }
}
