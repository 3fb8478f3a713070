//! The admin console's answers as tables read **by column name**: PgBouncer adds, renames and
//! reorders columns between versions (`reserve_pool` in 1.18 is `reserve_pool_size` in 1.24,
//! which also adds `load_balance_hosts`, `max_client_connections`, ...). Unknown columns are
//! ignored; a missing required one is an error naming it and the command.

use tokio_postgres::SimpleQueryMessage;

/// One result set of a `SHOW` command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// The command, for error messages (`SHOW POOLS`).
    pub command: &'static str,
    /// Column names, in the order the console sent them.
    pub columns: Vec<String>,
    /// Rows, one value per column (`None` for SQL NULL).
    pub rows: Vec<Vec<Option<String>>>,
}

/// A row of a [`Table`], read by column name.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'a Table,
    values: &'a [Option<String>],
}

impl Table {
    /// Collects the rows of a simple-query answer.
    pub fn from_messages(command: &'static str, messages: &[SimpleQueryMessage]) -> Table {
        let mut table = Table {
            command,
            ..Table::default()
        };
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(cols) if table.columns.is_empty() => {
                    table.columns = cols.iter().map(|c| c.name().to_string()).collect();
                }
                SimpleQueryMessage::Row(row) => {
                    if table.columns.is_empty() {
                        table.columns =
                            row.columns().iter().map(|c| c.name().to_string()).collect();
                    }
                    let values = (0..row.len()).map(|i| row.get(i).map(str::to_string));
                    table.rows.push(values.collect());
                }
                _ => {}
            }
        }
        table
    }

    /// Checks that every column of `required` is present: a console that lacks one cannot be
    /// read correctly, whatever else it sends.
    pub fn require(&self, required: &[&str], version: &str) -> Result<(), String> {
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !self.columns.iter().any(|have| have == c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} has no column {} ({version}); poolwatch reads PgBouncer 1.18 and newer",
            self.command,
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The rows.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            table: self,
            values,
        })
    }

    /// Whether the console sent column `name`.
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }
}

impl<'a> Row<'a> {
    /// The text of column `name`; `None` when absent or NULL.
    pub fn text(&self, name: &str) -> Option<&'a str> {
        let i = self.table.columns.iter().position(|c| c == name)?;
        self.values.get(i)?.as_deref()
    }

    /// Column `name` as a non-negative integer; `None` when absent, NULL, empty or not a
    /// number (PgBouncer pads some numbers with spaces).
    pub fn count(&self, name: &str) -> Option<u64> {
        let t = self.text(name)?.trim();
        t.parse::<u64>()
            .ok()
            .or_else(|| t.parse::<i64>().ok().map(|n| n.max(0) as u64))
    }

    /// The first of `names` that is present (a column renamed between versions).
    pub fn count_any(&self, names: &[&str]) -> Option<u64> {
        names.iter().find_map(|n| self.count(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: &[&[Option<&str>]]) -> Table {
        Table {
            command: "SHOW TEST",
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
        }
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let t = table(
            &["b", "a", "extra"],
            &[
                &[Some("2"), Some(" 7 "), None],
                &[Some("x"), Some("-1"), Some("")],
            ],
        );
        let rows: Vec<Row> = t.rows().collect();
        // (row, column, want)
        let cases = [
            (0, "a", Some(7)),
            (0, "b", Some(2)),
            (0, "extra", None),
            (0, "missing", None),
            (1, "a", Some(0)),
            (1, "b", None),
            (1, "extra", None),
        ];
        for (r, col, want) in cases {
            assert_eq!(rows[r].count(col), want, "row {r} {col}");
        }
        assert_eq!(rows[0].count_any(&["reserve_pool_size", "a"]), Some(7));
        assert!(t.has("extra") && !t.has("nope"));
    }

    #[test]
    fn a_missing_required_column_is_named_with_the_version() {
        let t = table(&["database", "user"], &[]);
        assert_eq!(t.require(&["database"], "PgBouncer 1.18.0"), Ok(()));
        let err = t
            .require(&["database", "sv_active", "maxwait"], "PgBouncer 1.18.0")
            .unwrap_err();
        assert_eq!(
            err,
            "SHOW TEST has no column `sv_active`, `maxwait` (PgBouncer 1.18.0); poolwatch reads PgBouncer 1.18 and newer"
        );
    }
}
