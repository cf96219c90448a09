//! One Postgres connection that comes back: the parsed configuration, the client, its
//! prepared statements, and reconnecting with bounded backoff when the server goes away (a
//! restart, a proxy or `pg_terminate_backend` killing the session).
//!
//! The schema is chosen with the connection's startup option `-c search_path=…`, which any
//! role may set (no `SET` statement, no DDL), and which every reconnect repeats.

use std::collections::HashMap;
use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, Config, NoTls, Statement};

use crate::store::StoreError;

/// Waits before each reconnection attempt: about 6 s in all, then the error is returned.
pub(super) const RECONNECT_DELAYS: &[Duration] = &[
    Duration::from_millis(0),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
    Duration::from_millis(3200),
];

/// Prepared statements kept per connection, at most.
const STATEMENT_CACHE: usize = 128;

pub(super) struct Connection {
    config: Config,
    /// `Postgres host:port/database, schema s`, for error messages (never the password).
    location: String,
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Connection {
    /// Connects to `url` with `schema` as the search path.
    pub(super) fn open(url: &str, schema: &str) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(|e| {
            StoreError::database(
                "invalid Postgres URL (use postgres://user@host:port/database)",
                e,
            )
        })?;
        if config.get_application_name().is_none() {
            config.application_name("audit-core");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let options = match config.get_options() {
            Some(options) => format!("{options} -c search_path={schema}"),
            None => format!("-c search_path={schema}"),
        };
        config.options(&options);
        let location = format!("Postgres {}, schema {schema}", describe(&config));
        let client = connect(&config, &location)?;
        Ok(Connection {
            config,
            location,
            client,
            statements: HashMap::new(),
        })
    }

    pub(super) fn location(&self) -> &str {
        &self.location
    }

    pub(super) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// `sql`, prepared once per connection.
    pub(super) fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Whether the session is gone and must be replaced.
    pub(super) fn is_lost(&self, error: &StoreError) -> bool {
        error.is_connection() || self.client.is_closed()
    }

    /// Replaces the session.
    pub(super) fn reconnect(&mut self) -> Result<(), StoreError> {
        self.client = connect(&self.config, &self.location)?;
        self.statements.clear();
        Ok(())
    }
}

fn connect(config: &Config, location: &str) -> Result<Client, StoreError> {
    config
        .connect(NoTls)
        .map_err(|e| StoreError::database(format!("cannot connect to {location}"), e))
}

/// `host:port/database` (every host, for a multi-host URL).
fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    };
    format!(
        "at {hosts}/{}",
        config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_host_port_and_database_but_no_password() {
        let config: Config = "postgres://me:secret@db.example:6543/audit"
            .parse()
            .unwrap();
        assert_eq!(describe(&config), "at db.example:6543/audit");
        let config: Config = "postgres://me@h1,h2/audit".parse().unwrap();
        assert_eq!(describe(&config), "at h1:5432,h2:5432/audit");
        let config: Config = "host=/run/postgresql user=me".parse().unwrap();
        assert_eq!(describe(&config), "at /run/postgresql:5432/me");
    }

    #[test]
    fn an_unreachable_server_names_where_and_why() {
        // Port 1 on loopback: nothing listens there.
        let Err(e) = Connection::open("postgres://nobody@127.0.0.1:1/audit", "public") else {
            panic!("connected to port 1");
        };
        let text = e.to_string();
        assert!(
            text.starts_with("cannot connect to Postgres at 127.0.0.1:1/audit, schema public: "),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        assert!(e.is_connection() && e.is_retryable());
        assert!(std::error::Error::source(&e).is_some());
        let bad = Connection::open("postgres://h/d?sslmode=sometimes", "public")
            .err()
            .unwrap();
        assert!(bad.to_string().starts_with("invalid Postgres URL"), "{bad}");
    }
}
