//! Sorting database errors into "try again later" and "this batch cannot work", with the
//! database's own words and a hint at the fix.

use sqlx::error::DatabaseError;

use crate::{ConnectorError, SinkError};

/// Whether an error is temporary (server down, timeout, overload, deadlock).
pub(crate) fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db_transient(db.as_ref()),
        _ => false,
    }
}

fn db_transient(db: &dyn DatabaseError) -> bool {
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // Too many connections, lock wait timeout, deadlock, shutdown, lost connection,
        // connection killed, read-only / out of resources.
        return matches!(
            my.number(),
            1040 | 1041 | 1053 | 1205 | 1213 | 1927 | 2002 | 2003 | 2006 | 2013 | 1290
        );
    }
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let code = pg.code();
        // 08 connection exception, 53 insufficient resources (incl. too many connections),
        // 57P01..57P03 shutdown / cannot connect now, 40001 serialization, 40P01 deadlock,
        // 55P03 lock not available.
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || matches!(code, "40001" | "40P01" | "55P03");
    }
    // SQLite reports its (extended) result code; the low byte is the primary code.
    if let Some(code) = db.code().and_then(|c| c.parse::<i32>().ok()) {
        // BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
        return matches!(code & 0xff, 5 | 6 | 10 | 13 | 14 | 15);
    }
    false
}

/// The database message with its detail and hint, without connection secrets.
pub(crate) fn describe(err: &sqlx::Error) -> String {
    if let sqlx::Error::Database(db) = err
        && let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
    {
        let mut s = format!("{} (SQLSTATE {})", pg.message(), pg.code());
        if let Some(d) = pg.detail() {
            s.push_str("; ");
            s.push_str(d);
        }
        if let Some(w) = pg.r#where() {
            s.push_str("; at ");
            s.push_str(w);
        }
        return s;
    }
    err.to_string()
}

/// A hint at the fix for a permanent write error.
fn fix_hint(err: &sqlx::Error) -> &'static str {
    let sqlx::Error::Database(db) = err else {
        return "check the records against the table definition";
    };
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return match pg.code() {
            "23505" => {
                "another unique index than the key conflicts: dedupe the source or change the key columns"
            }
            "23503" => "a referenced row is missing: deliver the parent records first",
            "23502" => "a NOT NULL column gets no value: map a value for it or give it a default",
            "23514" => "a CHECK constraint refuses the value: fix the value in the mapping",
            "22001" => {
                "a value is longer than the column allows: shorten it in the mapping or widen the column"
            }
            "22003" => "a number is out of the column's range: widen the column or fix the value",
            "22P02" | "22007" | "22008" => {
                "a value does not fit the column's type: convert it in the mapping"
            }
            "42703" => "a field has no column: map it to an existing column or add the column",
            "42804" => "a value has the wrong type for its column: convert it in the mapping",
            _ => "check the records against the table definition",
        };
    }
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match my.number() {
            1062 => {
                "another unique index than the key conflicts: dedupe the source or change the key columns"
            }
            1451 | 1452 => "a referenced row is missing: deliver the parent records first",
            1048 | 1364 => {
                "a NOT NULL column gets no value: map a value for it or give it a default"
            }
            1406 => {
                "a value is longer than the column allows: shorten it in the mapping or widen the column"
            }
            1264 | 1690 => {
                "a number is out of the column's range: widen the column or fix the value"
            }
            1292 | 1366 | 1367 => {
                "a value does not fit the column's type: convert it in the mapping"
            }
            1054 => "a field has no column: map it to an existing column or add the column",
            3819 | 4025 => "a CHECK constraint refuses the value: fix the value in the mapping",
            _ => "check the records against the table definition",
        };
    }
    match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => {
            "another unique index than the key conflicts: dedupe the source or change the key columns"
        }
        sqlx::error::ErrorKind::ForeignKeyViolation => {
            "a referenced row is missing: deliver the parent records first"
        }
        sqlx::error::ErrorKind::NotNullViolation => {
            "a NOT NULL column gets no value: map a value for it or give it a default"
        }
        sqlx::error::ErrorKind::CheckViolation => {
            "a CHECK constraint refuses the value: fix the value in the mapping"
        }
        _ => "check the records against the table definition",
    }
}

/// Classifies a write error: transient → `Transport`, anything else → `Batch`.
pub(crate) fn sink_error(system: &str, table: &str, n: usize, err: &sqlx::Error) -> SinkError {
    if is_transient(err) {
        SinkError::Transport(format!(
            "{system}: cannot write to table `{table}` now: {}; the batch will be retried",
            describe(err)
        ))
    } else {
        SinkError::Batch(format!(
            "{system}: table `{table}` refused a batch of {n} records: {}. Fix: {}",
            describe(err).trim_end_matches('.'),
            fix_hint(err)
        ))
    }
}

/// Classifies a read or catalog error for a source or at open.
pub(crate) fn connector_error(system: &str, table: &str, err: &sqlx::Error) -> ConnectorError {
    if is_transient(err) {
        ConnectorError::Transport(format!(
            "{system}: cannot read table `{table}` now: {}; will retry",
            describe(err)
        ))
    } else {
        ConnectorError::Config(format!(
            "{system}: reading table `{table}` failed: {}. Fix: check that the table and its \
             columns match the config and that the user may read them",
            describe(err)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_transport() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            sink_error("crm", "t", 3, &refused),
            SinkError::Transport(_)
        ));
        assert!(matches!(
            sink_error("crm", "t", 3, &sqlx::Error::PoolTimedOut),
            SinkError::Transport(_)
        ));
        let decode = sqlx::Error::Decode("bad".into());
        match sink_error("crm", "customers", 3, &decode) {
            SinkError::Batch(m) => assert!(m.contains("customers") && m.contains("Fix")),
            other => panic!("{other:?}"),
        }
    }
}
