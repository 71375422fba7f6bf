//! Plain-text tables for `mta ctl`: a header row, columns padded to their widest cell
//! (counted in characters), numbers right-aligned, two spaces between columns, no trailing
//! spaces.

use std::time::{Duration, SystemTime};

/// A table being built.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<String>,
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a column whose heading starts with `#` is numeric (the
    /// `#` is not shown).
    pub(crate) fn new(columns: &[&str]) -> Table {
        Table {
            header: columns
                .iter()
                .map(|c| c.trim_start_matches('#').to_owned())
                .collect(),
            numeric: columns.iter().map(|c| c.starts_with('#')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (cells beyond the columns are dropped, missing ones are blank).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        let cell = |row: &Vec<String>, i: usize| row.get(i).cloned().unwrap_or_default();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, width) in widths.iter_mut().enumerate() {
                *width = (*width).max(cell(row, i).chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let text = cell(row, i);
                let pad = width - text.chars().count();
                if i > 0 {
                    line.push_str("  ");
                }
                if self.numeric[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(&text);
                } else {
                    line.push_str(&text);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A short age: `42s`, `12m`, `3h05m`, `2d04h`.
pub(crate) fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A time as RFC 3339 with seconds, UTC.
pub(crate) fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `-` for an absent value.
pub(crate) fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_numbers_right_aligned() {
        let mut table = Table::new(&["NAME", "#COUNT", "NOTE"]);
        table.row(vec!["gmail".into(), "5".into(), "".into()]);
        table.row(vec!["yahoo.example".into(), "1234".into(), "slow".into()]);
        assert_eq!(
            table.render(),
            "NAME           COUNT  NOTE\n\
             gmail              5\n\
             yahoo.example   1234  slow\n"
        );
    }

    #[test]
    fn durations_are_short() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h00m"),
            (3600 * 5 + 60 * 7, "5h07m"),
            (86_400 * 2 + 3600 * 4, "2d04h"),
        ];
        for (secs, text) in cases {
            assert_eq!(short_duration(Duration::from_secs(secs)), text);
        }
    }
}
