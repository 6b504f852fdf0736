//! Aligned text tables for the listings of the CLI.
//!
//! Column widths follow the content, so long group names or patterns stay
//! readable instead of running into the next column. Colour, when the
//! caller asks for it, is applied after padding, so escape codes never
//! disturb the alignment.

/// A table of text cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

/// ANSI colour of one cell; `None` prints it plain.
pub type Paint<'a> = &'a dyn Fn(usize, usize, &str) -> Option<&'static str>;

impl Table {
    /// Columns named `headers`; a header starting with `>` is right-aligned
    /// (the `>` is not printed).
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row after the header line.
    pub fn render(&self, paint: Paint<'_>) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        self.line(&mut out, &widths, &header, None, &|_, _, _| None);
        for (index, row) in self.rows.iter().enumerate() {
            self.line(&mut out, &widths, row, Some(index), paint);
        }
        out
    }

    fn line(
        &self,
        out: &mut String,
        widths: &[usize],
        cells: &[String],
        row: Option<usize>,
        paint: Paint<'_>,
    ) {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (column, cell) in cells.iter().enumerate() {
            let pad = widths[column].saturating_sub(cell.chars().count());
            let padded = if self.right[column] {
                format!("{}{cell}", " ".repeat(pad))
            } else if column == last {
                cell.clone()
            } else {
                format!("{cell}{}", " ".repeat(pad))
            };
            match row.and_then(|r| paint(r, column, cell)) {
                Some(code) => line.push_str(&format!("\x1b[{code}m{padded}\x1b[0m")),
                None => line.push_str(&padded),
            }
            if column != last {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// No colour anywhere.
pub fn plain(_row: usize, _column: usize, _cell: &str) -> Option<&'static str> {
    None
}

/// Whether stdout gets colour: a terminal and no `NO_COLOR`.
pub fn stdout_wants_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_widest_cell() {
        let mut table = Table::new(&["id", "group", ">lag"]);
        table.row(vec!["1".into(), "billing-eu".into(), "5".into()]);
        table.row(vec!["12".into(), "b".into(), "1200".into()]);
        assert_eq!(
            table.render(&plain),
            "id  group        lag\n1   billing-eu     5\n12  b           1200\n"
        );
    }
}
