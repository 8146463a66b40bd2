use anyhow::Context;
use clap::Parser;
use hookbox::app::Application;
use hookbox::cli::{AdminAction, Cli, Command, ServeArgs, TokenAction};
use hookbox::db::{self, commands::Database};
use hookbox::domain::time;
use hookbox::http::auth;

/// A faster allocator than glibc's for many small, short-lived allocations across threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the kernel backs memory with transparent huge pages whenever it can (`always`,
/// as on many servers), each 2 MiB of the allocator's arena that is touched at all becomes
/// resident whole: hookbox idles at 35 MiB instead of 22. Its heap is small, so it gains
/// nothing from them; this process opts out (as `MIMALLOC_ALLOW_THP=0` would, and as
/// databases advise).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("cannot opt out of transparent huge pages: {e}");
    }
}

fn main() -> anyhow::Result<()> {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    init_logging(&log_format(&command));
    match command {
        Command::Serve(args) => serve(&args),
        Command::Token { action } => token(action),
        Command::Admin { action } => {
            let msg = hookbox::cli::admin(action, &mut std::io::stdin().lock())?;
            println!("{msg}");
            Ok(())
        }
        Command::Migrate(args) => {
            let cfg = args.config()?;
            let target = Database::of(&cfg);
            if let Database::Sqlite(_) = target {
                cfg.ensure_data_dir()?;
            }
            let v = db::commands::migrate(&target).context("while migrating")?;
            let name = match &target {
                Database::Sqlite(path) => path.display().to_string(),
                Database::Postgres(_) => "PostgreSQL".to_owned(),
            };
            println!("database {name} is at schema version {v}");
            Ok(())
        }
        Command::CheckConfig(args) => {
            let cfg = args.config()?;
            // The certificate and key must load, for whoever runs this (the service's user,
            // through the package's wrapper).
            if let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) {
                hookbox::tls::Certificates::load(cert, key)?;
            }
            print!("{}", cfg.to_toml());
            Ok(())
        }
        Command::Healthcheck(args) => healthcheck(&args),
        Command::RotateMainKey(args) => rotate_main_key(&args),
        Command::Openapi => {
            // Read partly (`hookbox openapi | head`) is not an error.
            use std::io::Write;
            let doc = hookbox::http::api::openapi::document_json();
            match std::io::stdout().lock().write_all(doc.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Backup { file, args } => {
            let cfg = args.config()?;
            anyhow::ensure!(
                !cfg.on_postgres(),
                "hookbox backup copies the SQLite database; on PostgreSQL use pg_dump \
                 (e.g. `pg_dump --format=custom --file={} DATABASE_URL`) or your provider's \
                 backups",
                file.display()
            );
            anyhow::ensure!(!file.exists(), "{} exists already", file.display());
            db::backup(&cfg.db_path(), &file).context("while backing up")?;
            println!("backup written to {}", file.display());
            Ok(())
        }
        Command::Copy(args) => {
            println!("{}", hookbox::cli::copy(&args)?);
            Ok(())
        }
    }
}

/// `json` or `text`: `HOOKBOX_LOG_FORMAT`, else `log_format` in the config file. Reading the
/// configuration here logs nothing (logging is not set up yet); the command reads it again
/// and reports any problem then.
fn log_format(command: &Command) -> String {
    if let Ok(format) = std::env::var("HOOKBOX_LOG_FORMAT") {
        return format;
    }
    let args = match command {
        Command::Serve(a)
        | Command::Migrate(a)
        | Command::CheckConfig(a)
        | Command::Healthcheck(a)
        | Command::RotateMainKey(a)
        | Command::Backup { args: a, .. } => a,
        // Needs no configuration.
        Command::Openapi => return String::new(),
        Command::Copy(a) => return a.config().map(|c| c.log_format).unwrap_or_default(),
        Command::Token { action } => match action {
            TokenAction::Create { args, .. }
            | TokenAction::List { args }
            | TokenAction::Revoke { args, .. } => args,
        },
        Command::Admin { action } => match action {
            AdminAction::Create { args, .. } | AdminAction::ResetPassword { args, .. } => args,
        },
    };
    args.config().map(|c| c.log_format).unwrap_or_default()
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOKBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text (and formatting
    // each request's span fields stays cheaper).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let mut cfg = args.config()?;
    // Under systemd stdout is the journal: no API token is printed there to be kept; the
    // admin makes one with `hookbox token create`. (The setup link works once, and expires.)
    cfg.bootstrap_token = std::env::var_os("JOURNAL_STREAM").is_none();
    let runner = actix_web::rt::System::new();
    let result = runner.block_on(async move {
        let app = Application::build(cfg).await?;
        if let Some(token) = app.bootstrap_token() {
            println!("First start: created an API token (shown only once):\n\n    {token}\n");
        }
        println!(
            "hookbox listening on {} (API at /api/v1, console at /admin)",
            app.url()
        );
        if let Some(token) = app.setup_token() {
            println!(
                "No admin yet: open this link within 24 hours to create the first one (it works once):\n\n    {}/admin/setup?token={token}\n",
                app.url()
            );
        }
        app.run_until_stopped().await
    });
    // Stopped: every write is committed and the store closed. Dropping the runtime would wait
    // for its blocking threads, among them name lookups for destinations that never answer
    // (the system resolver cannot be cancelled): they end with the process instead.
    std::mem::forget(runner);
    result
}

fn token(action: TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Create { name, args } => {
            use hookbox::service::tokens;
            tokens::check_name(&name).map_err(anyhow::Error::msg)?;
            let cfg = args.config()?;
            if !cfg.on_postgres() {
                cfg.ensure_data_dir()?;
            }
            let token = auth::generate_token();
            db::commands::create_token(
                &Database::of(&cfg),
                &name,
                &auth::hash_token(&token),
                time::now_ms(),
            )?;
            println!("{token}");
        }
        TokenAction::List { args } => {
            for t in db::commands::list_tokens(&Database::of(&args.config()?))? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let used = t
                    .last_used_at
                    .map_or_else(|| "never".to_owned(), time::format_ms);
                println!(
                    "{}\t{}\t{state}\tcreated {}\tlast used {used}",
                    t.id,
                    t.name,
                    time::format_ms(t.created_at)
                );
            }
        }
        TokenAction::Revoke { id_or_name, args } => {
            let db = Database::of(&args.config()?);
            let tokens = db::commands::list_tokens(&db)?;
            let t = hookbox::service::tokens::pick(&tokens, &id_or_name)
                .map_err(|e| anyhow::anyhow!(e))?;
            let n = db::commands::revoke_token(&db, &t.id, time::now_ms())?;
            anyhow::ensure!(n > 0, "token {} was revoked meanwhile", t.id);
            println!("revoked {} ({})", t.id, t.name);
        }
    }
    Ok(())
}

fn rotate_main_key(args: &ServeArgs) -> anyhow::Result<()> {
    use hookbox::main_key::{self, Rotated};
    let cfg = args.config()?;
    // On SQLite no server may run on the data dir; on PostgreSQL no node may run on the
    // database (checked in the rotation's transaction).
    let _lock = if cfg.on_postgres() {
        None
    } else {
        // A mistyped data dir would otherwise get a new database and key, "re-encrypted".
        anyhow::ensure!(
            cfg.db_path().exists(),
            "no hookbox database in {}: give the data dir of the installation whose key to rotate",
            cfg.data_dir.display()
        );
        cfg.ensure_data_dir()?;
        Some(hookbox::app::lock_data_dir(&cfg)?)
    };
    let rotated = main_key::rotate(&cfg, |new| {
        println!(
            "New main key (in use only once this command reports success):\n\n    {}\n",
            new.to_base64()
        );
    })
    .context("while rotating the main key")?;
    match rotated {
        Rotated::KeyFileReplaced { path, secrets } => println!(
            "re-encrypted {secrets} endpoint secret(s); the new main key is in {}",
            path.display()
        ),
        Rotated::UpdateConfiguration { source, secrets } if cfg.on_postgres() => println!(
            "re-encrypted {secrets} endpoint secret(s) under the new key above. Put it in \
             {source} on every node before starting them: no node starts with the old one."
        ),
        Rotated::UpdateConfiguration { source, secrets } => println!(
            "re-encrypted {secrets} endpoint secret(s) under the new key above. Put it in \
             {source} now: the server will not start with the old one."
        ),
    }
    Ok(())
}

fn healthcheck(args: &ServeArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let mut addr: std::net::SocketAddr = cfg.listen.parse()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("{}://{addr}/api/v1/health", cfg.scheme());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Whether this process answers, on its own address: the certificate, made out to
        // the public name, is not what is checked.
        let resp = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            // Its own address: never through a proxy the environment names.
            .no_proxy()
            .build()?
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .with_context(|| format!("while asking {url}"))?;
        anyhow::ensure!(
            resp.status().is_success(),
            "{url} answered {}",
            resp.status()
        );
        println!("ok");
        Ok(())
    })
}
