//! All wiring: `Application::build(cfg)` opens storage, starts the dispatcher and binds the
//! HTTP listener; `run_until_stopped` serves until a signal, then shuts down in order:
//! stop accepting, stop claiming, let what is in flight finish within the grace period,
//! flush the writer, checkpoint the WAL.

use crate::config::Config;
use crate::db::{DbOptions, PeerSignal, Store};
use crate::delivery::{client::Sender, ssrf::Guard, Dispatcher};
use crate::domain::time::now_ms;
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
    /// `https` with `tls_cert`, else `http`.
    scheme: &'static str,
    server: actix_web::dev::Server,
    state: web::Data<State>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// Stops this node's heartbeats, once what was in flight has finished.
    node_cancel: CancellationToken,
    grace: Duration,
    bootstrap_token: Option<String>,
    setup_token: Option<String>,
    /// The data dir's lock (SQLite only: on PostgreSQL nodes share nothing on disk).
    _lock: Option<std::fs::File>,
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
        // SIGHUP (a reload) from now on is taken, never the end of the process.
        let hangups = hangup_signal();
        // Read first: a certificate that does not load stops the start before anything else.
        let certs = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::Certificates::load(cert, key)?),
            _ => None,
        };
        let scheme = cfg.scheme();
        let (store, lock) = open_store(&cfg).await?;
        let operational_app_id = store.ensure_operational_app(now_ms()).await?;
        let bootstrap_token = if !cfg.bootstrap_token {
            None
        } else {
            let token = auth::generate_token();
            store
                .create_first_token("bootstrap", &auth::hash_token(&token), now_ms())
                .await?
                .map(|_| token)
        };
        let setup_token = {
            let token = http::admin::new_secret();
            let now = now_ms();
            let ttl = crate::domain::time::duration_ms(http::admin::SETUP_LINK_TTL);
            store
                .replace_setup_token(&http::admin::hash_secret(&token), now, now + ttl)
                .await?
                .then_some(token)
        };

        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let sender = Sender::new(&cfg.delivery, Guard::new(cfg.allow_destinations.clone()))?;
        let addr = listener.local_addr()?;
        // Alerts: the configuration's recipients replace the previous configuration's; the
        // notifier sends what is due (chat webhooks through the deliveries' guarded client).
        store
            .replace_config_alert_recipients(crate::alerts::configured_recipients(&cfg, now_ms()))
            .await?;
        let base_url = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let notifier = crate::alerts::Notifier::new(&cfg, store.clone(), sender.clone(), base_url);
        tracker.spawn(notifier.clone().run(cancel.clone()));
        let dispatcher = Dispatcher::start(
            store.clone(),
            sender,
            cfg.delivery.clone(),
            cfg.retry_schedule(),
            tracker.clone(),
            cancel.clone(),
        );
        let tasks = crate::tasks::Tasks::new(store.clone(), dispatcher.clone());
        if cfg.tasks.run {
            tracker.spawn(tasks.clone().run(cancel.clone()));
        }
        let housekeeping_cfg = cfg.clone();
        let (housekeeping_store, housekeeping_cancel) = (store.clone(), cancel.clone());
        let housekeeping_dispatcher = dispatcher.clone();
        tracker.spawn(async move {
            crate::housekeeping::run(
                housekeeping_store,
                housekeeping_dispatcher,
                &housekeeping_cfg,
                housekeeping_cancel,
            )
            .await;
        });

        let store_shared = store.is_shared();
        let grace = cfg.shutdown_grace;
        let keep_alive = cfg.keep_alive;
        let answer_timeout = cfg.answer_timeout;
        // The console's and portal's Testing form: a payload as large as the API takes,
        // percent-encoded (up to three bytes a byte), and the form's other fields. Every other
        // form keeps actix's 256 KiB (read before a session is checked).
        let form_limit = cfg.api.max_payload_bytes.saturating_mul(3) + 64 * 1024;
        let console = http::admin::Console::new(store.main_key());
        let state = web::Data::new(State {
            store,
            cfg: Arc::new(cfg),
            dispatcher,
            // Where other nodes revoke tokens too, a check is trusted for a second at most
            // (their signal usually clears it sooner).
            tokens: if store_shared {
                auth::TokenCache::with_ttl(Duration::from_secs(1))
            } else {
                auth::TokenCache::default()
            },
            metrics: http::metrics::HttpMetrics::default(),
            console,
            notifier,
            tasks,
            operational_app_id,
        });
        // With other nodes: heartbeats, freeing dead nodes' leases, and their signals.
        // Heartbeats go on through the shutdown's grace period (its own token, cancelled just
        // before the store closes): requests still in flight must not look dead to the others.
        let node_cancel = CancellationToken::new();
        if state.store.is_shared() {
            let (node, cancel) = (state.clone(), node_cancel.clone());
            let (every, dead_after) = (
                node.cfg.database.heartbeat_interval,
                node.cfg.database.node_timeout,
            );
            tracker.spawn(async move {
                let store = node.store.clone();
                store
                    .run_node(
                        every,
                        dead_after,
                        |s| {
                            node.dispatcher.heard(&s);
                            if matches!(s, PeerSignal::Tokens | PeerSignal::Resync) {
                                node.tokens.clear();
                            }
                        },
                        cancel,
                    )
                    .await;
            });
        }
        match &certs {
            Some(certs) => {
                tracker.spawn(certs.clone().watch(hangups, cancel.clone()));
            }
            None => {
                tracker.spawn(log_hangups(hangups, cancel.clone()));
            }
        }
        let data = state.clone();
        let server = HttpServer::new(move || {
            let traced = data.clone();
            App::new()
                .app_data(data.clone())
                // Innermost: the hot path, message ingest, skips the router.
                .wrap_fn(|req, srv| {
                    use actix_web::dev::Service;
                    use futures_util::future::Either;
                    match http::api::ingest_without_router(req) {
                        Ok(answer) => Either::Left(answer),
                        Err(req) => Either::Right(srv.call(req)),
                    }
                })
                .wrap(actix_web::middleware::ErrorHandlers::new().handler(
                    actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                    http::method_not_allowed,
                ))
                .wrap_fn(|req, srv| {
                    use actix_web::dev::Service;
                    srv.call(http::trim_trailing_slash(http::head_as_get(req)))
                })
                .wrap_fn(move |req, srv| http::answer_within(answer_timeout, req, srv))
                // Outermost: every log line of a request, and its answer, carry its id.
                .wrap_fn(move |req, srv| http::request_id::traced(&traced, req, srv))
                .service(web::resource("/metrics").route(web::get().to(http::metrics::scrape)))
                .configure(http::api::routes)
                .configure(|c| http::admin::routes(c, form_limit))
        });
        let server = match &certs {
            Some(certs) => server.listen_rustls_0_23(listener, certs.server_config()?)?,
            None => server.listen(listener)?,
        };
        let server = server
            // Signals are handled by `run_until_stopped`, which stops the server itself.
            .disable_signals()
            .keep_alive(match keep_alive {
                Duration::ZERO => actix_web::http::KeepAlive::Disabled,
                idle => actix_web::http::KeepAlive::Timeout(idle),
            })
            .shutdown_timeout(grace.as_secs().max(1))
            .run();
        Ok(Application {
            addr,
            scheme,
            server,
            state,
            tracker,
            cancel,
            node_cancel,
            grace,
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

    /// `scheme://address` of the listener (`https` when it serves a certificate).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
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

    /// Serves until SIGTERM or SIGINT (or the server handle stops it), then shuts down
    /// gracefully: stops accepting connections and claiming deliveries, lets requests and
    /// deliveries in flight finish within the grace period, commits and syncs every pending
    /// write, checkpoints the WAL and returns `Ok`. A second signal during that returns an
    /// error at once.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut signals = Signals::new().context("while installing signal handlers")?;
        let handle = self.server.handle();
        // Spawned: the server future carries out the pause and stop commands sent below.
        let mut server = tokio::spawn(self.server);
        let served = tokio::select! {
            served = &mut server => Some(served),
            name = signals.recv() => {
                tracing::info!(signal = name, grace = ?self.grace, "shutting down; a second signal stops at once");
                None
            }
        };
        let deadline = tokio::time::Instant::now() + self.grace;
        let graceful = async {
            let served = match served {
                Some(served) => served,
                None => {
                    // Stop accepting connections and let the deliveries in flight finish
                    // while the HTTP workers still run.
                    handle.pause().await;
                    self.state.dispatcher.shutdown(deadline).await;
                    // Then let the requests in flight finish and stop the workers.
                    let stopped = handle.stop(true);
                    let served = (&mut server).await;
                    stopped.await;
                    served
                }
            };
            let cancel = [&self.cancel, &self.node_cancel];
            shutdown(&self.state, &self.tracker, cancel, deadline).await;
            match served {
                Ok(served) => served.context("while serving HTTP"),
                Err(e) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
            }
        };
        tokio::select! {
            done = graceful => done,
            name = signals.recv() => {
                tracing::warn!(signal = name, "second signal: stopping at once");
                anyhow::bail!("stopped at once by a second {name}; deliveries in flight will be sent again at the next start")
            }
        }
    }

    /// The dispatcher, for tests that step it.
    pub fn dispatcher(&self) -> Dispatcher {
        self.state.dispatcher.clone()
    }

    /// The background task runner, for tests that step it.
    pub fn tasks(&self) -> crate::tasks::Tasks {
        self.state.tasks.clone()
    }

    /// The alert sender, for tests that step it.
    pub fn notifier(&self) -> crate::alerts::Notifier {
        self.state.notifier.clone()
    }

    /// A handle that stops the HTTP server; `run_until_stopped` then shuts the rest down.
    /// Unlike a signal, this stops the HTTP workers first, and with them the deliveries that
    /// run there (those ingest handed over while it left the workers time); their leases keep
    /// them for the next start. Deliveries on the delivery threads get the grace period.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Opens the configured storage: the shared PostgreSQL database when `database_url` is set,
/// else SQLite in the data dir (locked, so one server uses it at a time).
async fn open_store(cfg: &Config) -> anyhow::Result<(Store, Option<std::fs::File>)> {
    if let Some(url) = &cfg.database_url {
        let (main_key, key_source) =
            crate::main_key::load_or_create(cfg).context("while loading the main key")?;
        let store = Store::open_postgres(url, cfg.database.pool_size, main_key)
            .await
            .with_context(|| {
                format!("while opening the PostgreSQL database with the main key from {key_source}")
            })?;
        return Ok((store, None));
    }
    cfg.ensure_data_dir()?;
    let lock = lock_data_dir(cfg)?;
    let (main_key, key_source) =
        crate::main_key::load_or_create(cfg).context("while loading the main key")?;
    let store = Store::open_sqlite(
        &DbOptions {
            path: cfg.db_path(),
            max_size_mib: cfg.database.max_size_mib,
            synchronous: cfg.database.synchronous.clone(),
            readers: cfg.database.readers,
            max_batch: cfg.database.max_batch,
        },
        main_key,
    )
    .with_context(|| format!("while opening the database with the main key from {key_source}"))?;
    Ok((store, Some(lock)))
}

/// After the HTTP server has stopped: the dispatcher (again, for deliveries that requests
/// finishing during the stop handed over; they stay leased), the background tasks, the
/// database.
async fn shutdown(
    state: &State,
    tracker: &TaskTracker,
    cancel: [&CancellationToken; 2],
    deadline: tokio::time::Instant,
) {
    let started = std::time::Instant::now();
    let in_time = state.dispatcher.shutdown(deadline).await;
    for c in cancel {
        c.cancel();
    }
    tracker.close();
    // What is left (housekeeping) stops at once on `cancel`; a stuck write is no reason to
    // hang forever.
    let stuck = tokio::time::timeout_at(
        deadline.max(tokio::time::Instant::now()) + Duration::from_secs(5),
        tracker.wait(),
    )
    .await
    .is_err();
    if stuck {
        tracing::warn!("background tasks did not stop in time");
    }
    state.store.close().await;
    let how = if state.store.is_shared() {
        "stopped: every write committed, unsent deliveries handed back"
    } else {
        "stopped: every write committed, WAL checkpointed"
    };
    tracing::info!(
        deliveries_finished = in_time,
        secs = started.elapsed().as_secs_f64(),
        "{how}"
    );
}

/// SIGTERM and SIGINT.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next signal and names it.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}

/// One server per data dir: a second one would break the single-writer guarantees.
pub fn lock_data_dir(cfg: &Config) -> anyhow::Result<std::fs::File> {
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

/// Takes SIGHUP over from its default (ending the process): a service manager's reload.
/// The handler stays for the life of the process; `None` if it cannot be installed.
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP"))
        .ok()
}

/// Without a certificate there is nothing to reload: SIGHUP is only noted.
async fn log_hangups(hangups: Option<tokio::signal::unix::Signal>, cancel: CancellationToken) {
    let Some(mut hangups) = hangups else {
        return;
    };
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            Some(()) = hangups.recv() => {
                tracing::info!("SIGHUP: nothing to reload (the configuration is read at start; no tls_cert)");
            }
        }
    }
}
