//! Command line: one subcommand per function.

use crate::config::{Config, Overrides};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::path::PathBuf;

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
