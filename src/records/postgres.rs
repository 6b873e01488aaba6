//! Opening the PostgreSQL record store (`call_records =
//! "postgres://user@host:5432/hotline"`): one database that every
//! instance of a fleet writes to, and the dashboard and `hotline suggest`
//! read the whole fleet from.
//!
//! The password comes from the URL or, better, from `PGPASSWORD` (as for
//! `psql`), and is never shown: errors and logs name the database as
//! `postgres://user@host:port/dbname`. The connection is plain TCP (or a
//! Unix socket); a URL asking for `sslmode=require` is refused with
//! that said, since this build has no TLS for PostgreSQL: run the database
//! on the instances' private network.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::{Host, SslMode};

use super::db::{pg_error, Db};
use super::StoreError;

/// How long connecting may take before the record counts as lost (and is
/// tried again with the next one).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a `call_records` value names a PostgreSQL database.
pub fn is_url(location: &Path) -> bool {
    location.to_str().is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// The database as logs may show it: no password.
pub fn shown(location: &Path) -> String {
    let text = location.to_string_lossy();
    match postgres::Config::from_str(&text) {
        Ok(config) => describe(&config),
        Err(_) => "postgres://(an address that does not parse)".into(),
    }
}

fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().or(config.get_user()).unwrap_or("")
    )
}

/// Connects; the caller migrates.
pub fn connect(location: &Path) -> Result<Db, StoreError> {
    let text = location.to_string_lossy();
    let unparsed = |message: String| StoreError::Postgres { at: shown(location), message };
    let mut config = postgres::Config::from_str(&text).map_err(|e| unparsed(format!("not a PostgreSQL URL: {e}")))?;
    let shown = describe(&config);
    if config.get_ssl_mode() == SslMode::Require {
        return Err(StoreError::Postgres {
            at: shown,
            message: "sslmode=require: this hotline connects to PostgreSQL without TLS; use the database over \
                      a private network and leave sslmode out"
                .into(),
        });
    }
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("hotline");
    let client = config.connect(postgres::NoTls).map_err(|e| pg_error(&shown, e))?;
    Ok(Db::Postgres { client: Box::new(client), shown })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let url = Path::new("postgres://hotline:s3cret@db.internal:6432/calls");
        assert!(is_url(url));
        assert_eq!(shown(url), "postgres://hotline@db.internal:6432/calls");
        assert!(!is_url(Path::new("calls.db")) && !is_url(Path::new("/var/lib/hotline/postgres.db")));
    }

    #[test]
    fn a_refused_connection_says_where_without_the_password() {
        // Port 1 on loopback: nothing listens there.
        let Err(e) = connect(Path::new("postgres://hotline:s3cret@127.0.0.1:1/calls")) else {
            panic!("nothing listens on port 1");
        };
        let e = e.to_string();
        assert!(e.contains("postgres://hotline@127.0.0.1:1/calls") && !e.contains("s3cret"), "{e}");
    }
}
