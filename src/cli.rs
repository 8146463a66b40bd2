//! Command line: one subcommand per function.

use crate::config::{Config, Overrides};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::path::{Path, PathBuf};

/// `hookbox --version`: the release and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HOOKBOX_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "hookbox",
    version = VERSION,
    about = "Self-hosted webhook sender: one binary, one SQLite file"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Directory holding the database, key file and hookbox.toml.
    #[arg(long, env = "HOOKBOX_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: DATA_DIR/hookbox.toml when present).
    #[arg(long, env = "HOOKBOX_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: Common,
    /// A PostgreSQL database that several nodes share (postgres://USER[:PASS]@HOST:PORT/DB);
    /// without it, SQLite in the data dir.
    #[arg(long, env = "HOOKBOX_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "HOOKBOX_LISTEN", global = true)]
    pub listen: Option<String>,
    /// Let deliveries reach this subnet even though it is private or loopback (repeatable).
    #[arg(
        long = "allow-destination",
        env = "HOOKBOX_ALLOW_DESTINATIONS",
        value_delimiter = ',',
        global = true
    )]
    pub allow_destinations: Vec<IpNet>,
}

impl ServeArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::load(&Overrides {
            data_dir: self.common.data_dir.clone(),
            database_url: self.database_url.clone(),
            listen: self.listen.clone(),
            allow_destinations: self.allow_destinations.clone(),
            config_file: self.common.config.clone(),
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Manage admin console users.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate(ServeArgs),
    /// Print the effective configuration, secrets hidden.
    CheckConfig(ServeArgs),
    /// Exit 0 when the local server answers its health check.
    Healthcheck(ServeArgs),
    /// Re-encrypt every endpoint secret under a new main key (stop the server first).
    RotateMainKey(ServeArgs),
    /// Print the OpenAPI document of the API (as served at /api/v1/openapi.json).
    Openapi,
    /// Write a consistent copy of the live database to FILE.
    Backup {
        file: PathBuf,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Copy a SQLite installation into an empty PostgreSQL database (stop the server first).
    Copy(CopyArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CopyArgs {
    /// The data dir of the SQLite installation (its hookbox.db, main key and hookbox.toml).
    #[arg(long, value_name = "DATA_DIR_OR_URL")]
    pub from: String,
    /// The empty PostgreSQL database to fill (postgres://USER[:PASS]@HOST:PORT/DB).
    #[arg(long, value_name = "URL")]
    pub to: String,
    // `--config`: the installation's configuration file, when not in its data dir.
    #[command(flatten)]
    pub common: Common,
}

impl CopyArgs {
    /// The configuration of the installation copied: its data dir is `--from`, and it is on
    /// SQLite whatever the environment says.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut cfg = Config::load(&Overrides {
            data_dir: Some(PathBuf::from(&self.from)),
            config_file: self.common.config.clone(),
            ..Overrides::default()
        })?;
        cfg.database_url = None;
        Ok(cfg)
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create a token and print it alone on stdout.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// List tokens (never their values).
    List {
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Revoke a token by id, or by name when one active token has it.
    Revoke {
        id_or_name: String,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Create an admin; the password is read from stdin (first line) or --password-file.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Set a new password (stdin or --password-file) and end the admin's sessions.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        args: ServeArgs,
    },
}

/// The password for `admin create|reset-password`: from a file, else the first line of
/// `stdin` (so it stays out of the shell history and the process list).
fn read_password(file: Option<&Path>, stdin: &mut dyn std::io::BufRead) -> anyhow::Result<String> {
    let raw = match file {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("while reading {}", f.display()))?
        }
        None => {
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .context("while reading the password from stdin")?;
            line
        }
    };
    let pw = raw.trim_end_matches(['\n', '\r']).to_owned();
    crate::domain::password::check_new(&pw)
        .map_err(|e| anyhow::anyhow!("password refused: {e}"))?;
    Ok(pw)
}

/// Runs `hookbox admin …` and returns what to print. Works while a server uses the
/// database: SQLite's locking serializes the two writers.
pub fn admin(action: AdminAction, stdin: &mut dyn std::io::BufRead) -> anyhow::Result<String> {
    use crate::db;
    use crate::db::commands::Database;
    use crate::domain::{password, time};
    match action {
        AdminAction::Create {
            username,
            password_file,
            args,
        } => {
            crate::http::admin::check_username(&username)
                .map_err(|e| anyhow::anyhow!("username refused: {e}"))?;
            let pw = read_password(password_file.as_deref(), stdin)?;
            let hash = password::hash(&pw).map_err(|e| anyhow::anyhow!(e))?;
            let cfg = args.config()?;
            if !cfg.on_postgres() {
                cfg.ensure_data_dir()?;
            }
            db::commands::create_admin(&Database::of(&cfg), &username, &hash, time::now_ms())
                .context("while creating the admin")?;
            Ok(format!("created admin `{username}`"))
        }
        AdminAction::ResetPassword {
            username,
            password_file,
            args,
        } => {
            let pw = read_password(password_file.as_deref(), stdin)?;
            let hash = password::hash(&pw).map_err(|e| anyhow::anyhow!(e))?;
            let found = db::commands::set_admin_password(
                &Database::of(&args.config()?),
                &username,
                &hash,
                time::now_ms(),
            )?;
            anyhow::ensure!(found, "no admin named `{username}`");
            Ok(format!(
                "password of `{username}` changed; its sessions were ended"
            ))
        }
    }
}

/// Runs `hookbox copy` and returns what to print: the rows copied per table and where the
/// main key came from (the PostgreSQL nodes need the same one).
pub fn copy(args: &CopyArgs) -> anyhow::Result<String> {
    use crate::main_key::KeySource;
    use std::fmt::Write;
    let postgres = |s: &str| {
        let s = s.trim_start().to_ascii_lowercase();
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    };
    anyhow::ensure!(
        !postgres(&args.from),
        "copying from PostgreSQL is not supported; use pg_dump"
    );
    anyhow::ensure!(
        postgres(&args.to),
        "--to must name a PostgreSQL database (postgres://USER[:PASS]@HOST:PORT/DB)"
    );
    let cfg = args.config()?;
    anyhow::ensure!(
        cfg.data_dir.is_dir(),
        "{} is not a directory: --from names the data dir of a SQLite installation",
        cfg.data_dir.display()
    );
    let db = cfg.db_path();
    anyhow::ensure!(db.is_file(), "no hookbox database at {}", db.display());
    // No server may change it meanwhile (nor after: the nodes take over its deliveries).
    let _lock = crate::app::lock_data_dir(&cfg)?;
    let (key, source) =
        crate::main_key::load_or_create(&cfg).context("while loading the main key")?;
    let copied = crate::db::copy::sqlite_to_postgres(&db, &key, &args.to)
        .with_context(|| format!("while copying {} into PostgreSQL", db.display()))?;

    let mut out = format!("copied {} into PostgreSQL:\n", db.display());
    let width = copied
        .tables
        .iter()
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(0);
    for (table, rows) in &copied.tables {
        let _ = write!(out, "  {table:<width$}  {rows:>9}");
        if *table == "deliveries" && copied.pending > 0 {
            let _ = write!(
                out,
                "  ({} pending: the nodes will send them",
                copied.pending
            );
            if copied.unleased > 0 {
                let _ = write!(
                    out,
                    "; {} claimed by the stopped server were released",
                    copied.unleased
                );
            }
            out.push(')');
        }
        out.push('\n');
    }
    if copied.nul_replaced > 0 {
        let _ = writeln!(
            out,
            "{} text value(s) held NUL characters, which PostgreSQL cannot store: each became U+FFFD",
            copied.nul_replaced
        );
    }
    let how = match &source {
        KeySource::Env => "give every node this same HOOKBOX_MAIN_KEY".to_owned(),
        KeySource::ConfiguredFile(p) | KeySource::DataDirFile(p) => format!(
            "set HOOKBOX_MAIN_KEY on every node to the content of {}, or HOOKBOX_MAIN_KEY_FILE \
             to a copy of that file (mode 0600)",
            p.display()
        ),
    };
    let _ = write!(
        out,
        "\nThe endpoint secrets and custom headers were copied still encrypted under the main \
         key from {source}. Every PostgreSQL node must use that same key, or it refuses to \
         start: {how}.\nDo not start the SQLite server again: it would send the pending \
         deliveries a second time."
    );
    Ok(out)
}
