//! All wiring: `Application::build(cfg)` opens storage, starts the dispatcher and binds the
//! HTTP listener; `run_until_stopped` serves until a signal, then shuts down in order.

use crate::config::Config;
use crate::db::{admin as admin_db, tokens, Db, DbOptions};
use crate::delivery::{client::Sender, ssrf::Guard, Dispatcher};
use crate::domain::{ids, time::now_ms};
use crate::http::{self, auth, State};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct Application {
    addr: std::net::SocketAddr,
    server: actix_web::dev::Server,
    state: web::Data<State>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    bootstrap_token: Option<String>,
    setup_token: Option<String>,
    _lock: std::fs::File,
}

impl Application {
    /// Builds everything from `cfg`, binding `cfg.listen` (port 0 picks a free port).
    pub async fn build(cfg: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&cfg.listen)
            .with_context(|| format!("while binding {}", cfg.listen))?;
        Self::build_with_listener(cfg, listener).await
    }

    pub async fn build_with_listener(
        cfg: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        cfg.ensure_data_dir()?;
        let lock = lock_data_dir(&cfg)?;
        let db = Db::open(&DbOptions {
            path: cfg.db_path(),
            synchronous: cfg.database.synchronous.clone(),
            readers: cfg.database.readers,
            max_batch: cfg.database.max_batch,
        })
        .context("while opening the database")?;
        let bootstrap_token = db
            .write(|c| {
                if tokens::count_active(c)? > 0 {
                    return Ok(None);
                }
                let token = auth::generate_token();
                tokens::insert(
                    c,
                    &ids::new_id(ids::TOKEN),
                    "bootstrap",
                    &auth::hash_token(&token),
                    now_ms(),
                )?;
                Ok(Some(token))
            })
            .await?;
        let setup_token = db
            .write(|c| {
                if admin_db::count_users(c)? > 0 {
                    return Ok(None);
                }
                let token = http::admin::new_secret();
                let now = now_ms();
                let ttl = i64::try_from(http::admin::SETUP_LINK_TTL.as_millis()).unwrap_or(0);
                admin_db::replace_setup_token(
                    c,
                    &http::admin::hash_secret(&token),
                    now,
                    now + ttl,
                )?;
                Ok(Some(token))
            })
            .await?;

        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let sender = Sender::new(&cfg.delivery, Guard::new(cfg.allow_destinations.clone()))?;
        let dispatcher = Dispatcher::start(
            db.clone(),
            sender,
            cfg.delivery.clone(),
            cfg.retry_schedule(),
            tracker.clone(),
            cancel.clone(),
        );
        let housekeeping_cfg = cfg.clone();
        let (housekeeping_db, housekeeping_cancel) = (db.clone(), cancel.clone());
        tracker.spawn(async move {
            crate::housekeeping::run(housekeeping_db, &housekeeping_cfg, housekeeping_cancel).await;
        });

        let addr = listener.local_addr()?;
        let state = web::Data::new(State {
            db,
            cfg: Arc::new(cfg),
            dispatcher,
            tokens: auth::TokenCache::default(),
            console: http::admin::Console::new(),
        });
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(actix_web::middleware::ErrorHandlers::new().handler(
                    actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                    http::method_not_allowed,
                ))
                .wrap_fn(|req, srv| {
                    use actix_web::dev::Service;
                    srv.call(http::trim_trailing_slash(req))
                })
                .configure(http::api::routes)
                .configure(http::admin::routes)
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        Ok(Application {
            addr,
            server,
            state,
            tracker,
            cancel,
            bootstrap_token,
            setup_token,
            _lock: lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address actually bound (with the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The API token created on the first start of an empty data dir, if this was it.
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.bootstrap_token.as_deref()
    }

    /// The one-time token of the first admin's setup link (`/admin/setup?token=…`), made on
    /// every start while no admin exists (each start replaces the previous link).
    pub fn setup_token(&self) -> Option<&str> {
        self.setup_token.as_deref()
    }

    /// Serves until SIGINT/SIGTERM (or the server handle stops it), then stops claiming,
    /// lets in-flight deliveries finish within a grace period and flushes the database.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within 10 s");
        }
        drop(self.state);
        result.context("while serving HTTP")
    }

    /// A handle that stops the server (as a signal would).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// One server per data dir: a second one would break the single-writer guarantees.
fn lock_data_dir(cfg: &Config) -> anyhow::Result<std::fs::File> {
    let path = cfg.data_dir.join("hookbox.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("while opening {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another hookbox server is using {}; stop it first",
            cfg.data_dir.display()
        )
    })?;
    Ok(file)
}
