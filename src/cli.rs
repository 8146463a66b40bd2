//! Command line: one subcommand per function.

use crate::config::{Config, Overrides};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "hookbox",
    version,
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
    #[arg(long, env = "HOOKBOX_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "HOOKBOX_LISTEN")]
    pub listen: Option<String>,
    /// Let deliveries reach this subnet even though it is private or loopback (repeatable).
    #[arg(
        long = "allow-destination",
        env = "HOOKBOX_ALLOW_DESTINATIONS",
        value_delimiter = ','
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
    /// Revoke a token by id or name.
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
