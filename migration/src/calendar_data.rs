//! The project's calendar format: `notice_year,date,HOLIDAY|WORKDAY,name` lines with
//! `#` comments. The seed migration, the admin CLI and tests all read it through here.

use chrono::NaiveDate;

/// The calendars shipped with the project (2023-2026).
pub const SHIPPED_CSV: &str = include_str!("../data/calendar-cn.csv");

/// One exception day of a State Council notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarRow {
    /// The year in the notice's title (a notice may reach into the neighbouring years).
    pub notice_year: i32,
    pub day: NaiveDate,
    /// `true`: a weekend day worked (调休); `false`: a weekday off.
    pub is_working_day: bool,
    pub name: String,
}

pub fn parse(text: &str) -> Result<Vec<CalendarRow>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [year, day, kind, name] = fields[..] else {
            return Err(format!("line {}: expected year,date,kind,name", n + 1));
        };
        let notice_year: i32 = year
            .parse()
            .map_err(|_| format!("line {}: '{year}' is not a year", n + 1))?;
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| format!("line {}: '{day}' is not a YYYY-MM-DD date", n + 1))?;
        let is_working_day = match kind {
            "WORKDAY" => true,
            "HOLIDAY" => false,
            other => {
                return Err(format!(
                    "line {}: kind '{other}' is neither HOLIDAY nor WORKDAY",
                    n + 1
                ));
            }
        };
        rows.push(CalendarRow {
            notice_year,
            day,
            is_working_day,
            name: name.to_string(),
        });
    }
    Ok(rows)
}

/// The notice years the rows cover, ascending and distinct.
pub fn years(rows: &[CalendarRow]) -> Vec<i32> {
    let mut years: Vec<i32> = rows.iter().map(|r| r.notice_year).collect();
    years.sort_unstable();
    years.dedup();
    years
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_calendar_parses() {
        let rows = parse(SHIPPED_CSV).unwrap();
        assert_eq!(years(&rows), vec![2023, 2024, 2025, 2026]);
    }

    #[test]
    fn malformed_lines_are_reported() {
        assert!(parse("2026,2026-13-01,HOLIDAY,x").is_err());
        assert!(parse("2026,2026-01-01,OFF,x").is_err());
        assert!(parse("2026,2026-01-01").is_err());
    }
}
