//! One connection to a record database, SQLite or PostgreSQL, behind the
//! few operations the record code needs: run a statement, read rows.
//!
//! The records' SQL is written once, in the dialect both understand
//! (`?1`-style parameters, which PostgreSQL gets as `$1`), and rows come
//! back as plain [`Value`]s, so the writer, the dashboard's questions and
//! the readers of stored calls do not care which database holds them.
//! Queries that could return many rows are bounded by their callers
//! (`LIMIT`, or paging).
use std::path::{Path, PathBuf};

use super::StoreError;

/// A parameter of a statement; `None` is SQL `NULL` of that type
/// (PostgreSQL wants to know which).
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<&'a str>),
    Bool(bool),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(Some(s))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Param::Text(Some(s))
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Param::Text(s.as_deref())
    }
}

impl From<i64> for Param<'_> {
    fn from(n: i64) -> Self {
        Param::Int(Some(n))
    }
}

impl From<u64> for Param<'_> {
    fn from(n: u64) -> Self {
        Param::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
    }
}

impl From<bool> for Param<'_> {
    fn from(b: bool) -> Self {
        Param::Bool(b)
    }
}

/// A column of a row read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl Value {
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// A non-negative count or time; NULL and negatives read as 0.
    pub fn u64(&self) -> u64 {
        match self {
            Value::Int(n) => (*n).max(0) as u64,
            Value::Real(x) => x.max(0.0) as u64,
            _ => 0,
        }
    }

    pub fn i64(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    /// SQLite has no booleans: 0 and 1 are its false and true.
    pub fn bool(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            _ => false,
        }
    }
}

pub type Row = Vec<Value>;

/// An open connection and what to call it in errors and logs (a file
/// path, or a PostgreSQL address without its password).
pub enum Db {
    Sqlite { conn: rusqlite::Connection, path: PathBuf },
    Postgres { client: Box<postgres::Client>, shown: String },
}

impl Db {
    /// The database, as errors and logs name it.
    pub fn shown(&self) -> &Path {
        match self {
            Db::Sqlite { path, .. } => path,
            Db::Postgres { shown, .. } => Path::new(shown),
        }
    }

    /// Runs a statement; the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite { conn, path } => {
                let mut stmt = conn.prepare_cached(sql).map_err(|e| sqlite_error(path, e))?;
                let n = stmt.execute(rusqlite::params_from_iter(params.iter().map(sqlite_param)));
                n.map(|n| n as u64).map_err(|e| sqlite_error(path, e))
            }
            Db::Postgres { client, shown } => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
                client.execute(dollar_params(sql).as_str(), &refs).map_err(|e| pg_error(shown, e))
            }
        }
    }

    /// Runs several statements without parameters (schema steps).
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Sqlite { conn, path } => conn.execute_batch(sql).map_err(|e| sqlite_error(path, e)),
            Db::Postgres { client, shown } => client.batch_execute(sql).map_err(|e| pg_error(shown, e)),
        }
    }

    /// The rows of a query, whole: callers bound them.
    pub fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        match self {
            Db::Sqlite { conn, path } => {
                let mut stmt = conn.prepare_cached(sql).map_err(|e| sqlite_error(path, e))?;
                let columns = stmt.column_count();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter().map(sqlite_param)))
                    .map_err(|e| sqlite_error(path, e))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(|e| sqlite_error(path, e))? {
                    let mut row = Vec::with_capacity(columns);
                    for i in 0..columns {
                        row.push(sqlite_value(r.get_ref(i).map_err(|e| sqlite_error(path, e))?));
                    }
                    out.push(row);
                }
                Ok(out)
            }
            Db::Postgres { client, shown } => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
                let rows = client.query(dollar_params(sql).as_str(), &refs).map_err(|e| pg_error(shown, e))?;
                rows.iter().map(|r| pg_row(r).map_err(|e| pg_error(shown, e))).collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs `work` in a transaction: all of it is stored, or none.
    pub fn transaction<T>(&mut self, work: impl FnOnce(&mut Db) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.batch("BEGIN")?;
        match work(self) {
            Ok(done) => {
                self.batch("COMMIT")?;
                Ok(done)
            }
            Err(e) => {
                // The first error is the one worth reporting.
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// A PostgreSQL connection the server closed (a restart, a network
    /// cut): every statement on it fails from now on.
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Sqlite { .. } => false,
            Db::Postgres { client, .. } => client.is_closed(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres { .. })
    }
}

pub fn sqlite_error(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite { path: path.to_path_buf(), source }
}

/// PostgreSQL's own message when the server sent one ("relation … does
/// not exist"), else the client's ("connection refused").
pub fn pg_error(shown: &str, e: postgres::Error) -> StoreError {
    let message = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            text
        }
    };
    StoreError::Postgres { at: shown.to_string(), message }
}

fn sqlite_param(p: &Param<'_>) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match *p {
        Param::Int(n) => n.map_or(V::Null, V::Integer),
        Param::Real(x) => x.map_or(V::Null, V::Real),
        Param::Text(s) => s.map_or(V::Null, |s| V::Text(s.to_string())),
        Param::Bool(b) => V::Integer(i64::from(b)),
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => Value::Null,
        V::Integer(n) => Value::Int(n),
        V::Real(x) => Value::Real(x),
        V::Text(t) | V::Blob(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

fn pg_params<'a>(params: &[Param<'a>]) -> Vec<Box<dyn postgres::types::ToSql + Sync + 'a>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync + 'a> {
            match *p {
                Param::Int(n) => Box::new(n),
                Param::Real(x) => Box::new(x),
                Param::Text(s) => Box::new(s),
                Param::Bool(b) => Box::new(b),
            }
        })
        .collect()
}

fn pg_row(r: &postgres::Row) -> Result<Row, postgres::Error> {
    use postgres::types::Type;
    let mut row = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let t = column.type_();
        let v = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, |n| Value::Int(n.into()))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map_or(Value::Null, |n| Value::Int(n.into()))
        } else if *t == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map_or(Value::Null, Value::Real)
        } else if *t == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?.map_or(Value::Null, |x| Value::Real(x.into()))
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool)
        } else {
            r.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text)
        };
        row.push(v);
    }
    Ok(row)
}

/// `?1` → `$1`: the records' SQL holds no `?` of its own.
fn dollar_params(sql: &str) -> String {
    sql.replace('?', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_for_postgres() {
        assert_eq!(dollar_params("SELECT a FROM t WHERE b = ?1 AND c < ?2"), "SELECT a FROM t WHERE b = $1 AND c < $2");
    }

    #[test]
    fn a_failed_statement_in_a_transaction_leaves_nothing_behind() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Db::Sqlite { conn, path: PathBuf::from(":memory:") };
        db.batch("CREATE TABLE t (n INTEGER NOT NULL)").unwrap();
        let failed = db.transaction(|db| {
            db.execute("INSERT INTO t (n) VALUES (?1)", &[Param::from(1_i64)])?;
            db.execute("INSERT INTO t (n) VALUES (?1)", &[Param::Int(None)])
        });
        assert!(failed.is_err(), "NULL into NOT NULL fails");
        assert_eq!(db.query("SELECT COUNT(*) FROM t", &[]).unwrap()[0][0], Value::Int(0));
        db.transaction(|db| db.execute("INSERT INTO t (n) VALUES (?1)", &[Param::from(7_u64)])).unwrap();
        assert_eq!(db.query("SELECT n FROM t", &[]).unwrap(), vec![vec![Value::Int(7)]]);
    }
}
