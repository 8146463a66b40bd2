//! Console authentication: setup link, login, sessions, CSRF, throttling, the admin CLI.

use crate::support::console::{Console, PASSWORD};
use crate::support::TestApp;

/// Every console page (with placeholder ids where the page needs one).
pub const PAGES: &[&str] = &[
    "/admin",
    "/admin/apps",
    "/admin/event-types",
    "/admin/tokens",
    "/admin/apps/app_x",
    "/admin/apps/app_x/delete",
    "/admin/apps/app_x/webhooks",
    "/admin/apps/app_x/webhooks/new",
    "/admin/apps/app_x/endpoints/ep_x",
    "/admin/apps/app_x/endpoints/ep_x/logs",
    "/admin/apps/app_x/endpoints/ep_x/testing",
    "/admin/apps/app_x/endpoints/ep_x/settings",
    "/admin/apps/app_x/endpoints/ep_x/delete",
    "/admin/apps/app_x/endpoints/ep_x/attempts/msg_x/atmpt_x",
    "/admin/apps/app_x/endpoints/ep_x/enable",
];

/// Every console form target.
pub const FORMS: &[&str] = &[
    "/admin/logout",
    "/admin/tokens",
    "/admin/tokens/tok_x/revoke",
    "/admin/apps",
    "/admin/apps/app_x/delete",
    "/admin/apps/app_x/webhooks/new",
    "/admin/apps/app_x/endpoints/ep_x/messages/msg_x/resend",
    "/admin/apps/app_x/endpoints/ep_x/secret",
    "/admin/apps/app_x/endpoints/ep_x/secret/rotate",
    "/admin/apps/app_x/endpoints/ep_x/disable",
    "/admin/apps/app_x/endpoints/ep_x/testing",
    "/admin/apps/app_x/endpoints/ep_x/settings",
    "/admin/apps/app_x/endpoints/ep_x/delete",
    "/admin/apps/app_x/endpoints/ep_x/enable",
];

#[tokio::test]
async fn first_admin_is_created_through_the_one_time_setup_link() {
    let app = TestApp::spawn().await;
    let token = app.setup_token.clone().unwrap();
    let mut c = Console::new(&app);
    let form = c.page(&format!("/admin/setup?token={token}")).await;
    assert!(form.contains("Create admin"), "{form}");
    // A short password is refused next to its field; nothing is created.
    let r = c
        .post(
            "/admin/setup",
            &[
                ("token", &token),
                ("username", "ops"),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at least 10 characters"), "{}", r.body);
    let r = c
        .post(
            "/admin/setup",
            &[
                ("token", &token),
                ("username", "ops"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/admin"));
    assert!(c.page("/admin").await.contains("Dashboard"));
    // The link works once.
    let mut other = Console::new(&app);
    assert_eq!(
        other
            .get(&format!("/admin/setup?token={token}"))
            .await
            .status,
        410
    );
    let r = other
        .post(
            "/admin/setup",
            &[
                ("token", &token),
                ("username", "eve"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 410);
    assert!(other.cookie.is_none());
    assert_eq!(other.get("/admin/setup?token=wrong").await.status, 410);
}

/// A setup form posted with a token that is not (or no longer) usable is refused before
/// anything else is done with it: before its fields are checked, and before its password is
/// hashed (19 MiB and tens of ms each), which anyone could otherwise have the server do.
#[tokio::test]
async fn a_setup_form_with_an_unusable_token_is_refused_before_its_password_is_looked_at() {
    let app = TestApp::spawn().await;
    let mut c = Console::new(&app);
    for (token, password) in [("wrong", "short"), ("wrong", PASSWORD), ("", PASSWORD)] {
        let r = c
            .post(
                "/admin/setup",
                &[
                    ("token", token),
                    ("username", "eve"),
                    ("password", password),
                    ("confirm", password),
                ],
            )
            .await;
        assert_eq!(r.status, 410, "{token:?} {password:?}: {}", r.body);
        assert!(r.body.contains("setup link is invalid"), "{}", r.body);
    }
}

#[tokio::test]
async fn login_succeeds_with_the_right_password_and_fails_with_a_wrong_one() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    let r = c.login("admin", "not the password").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong username or password"));
    assert!(c.cookie.is_none());
    let r = c.login("nobody", PASSWORD).await;
    assert_eq!(r.status, 401);
    let r = c.login("admin", PASSWORD).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/admin"));
    let cookie = c.last_set_cookie.clone().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let page = c.page("/admin").await;
    assert!(page.contains("<span class=\"who\">admin</span>") && page.contains("Log out"));
    // The login page sends a logged-in admin on to the dashboard.
    assert_eq!(
        c.get("/admin/login").await.location.as_deref(),
        Some("/admin")
    );
}

#[tokio::test]
async fn a_login_form_posted_from_elsewhere_is_rejected() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    // No token, or a token without its cookie: a cross-site form cannot log anyone in.
    let r = c
        .post(
            "/admin/login",
            &[("username", "admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 403);
    let token = c.login_token().await;
    c.login_cookie = None;
    let r = c
        .post(
            "/admin/login",
            &[
                ("login_csrf", &token),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(c.cookie.is_none());
}

#[tokio::test]
async fn login_returns_to_the_page_that_asked_for_it() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    let r = c.get("/admin/apps?after=app_x").await;
    let login = r.location.unwrap();
    assert_eq!(login, "/admin/login?next=%2Fadmin%2Fapps%3Fafter%3Dapp_x");
    let page = c.page(&login).await;
    assert!(
        page.contains("name=\"next\" value=\"/admin/apps?after=app_x\""),
        "{page}"
    );
    let token = c.login_token().await;
    let r = c
        .post(
            "/admin/login",
            &[
                ("login_csrf", &token),
                ("username", "admin"),
                ("password", PASSWORD),
                ("next", "/admin/apps?after=app_x"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/admin/apps?after=app_x"));
    // Never to another site.
    let mut d = Console::new(&app);
    let token = d.login_token().await;
    let r = d
        .post(
            "/admin/login",
            &[
                ("login_csrf", &token),
                ("username", "admin"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/admin"));
}

#[tokio::test]
async fn session_cookie_is_secure_behind_a_tls_proxy() {
    let login_over = |app: &TestApp| {
        let mut c = Console::new(app);
        async move {
            let r = c
                .login_with_headers("admin", PASSWORD, &[("x-forwarded-proto", "https")])
                .await;
            assert_eq!(r.status, 303);
            c.last_set_cookie.unwrap()
        }
    };
    let app =
        TestApp::spawn_with(|cfg| cfg.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
            .await;
    Console::first_admin(&app).await;
    assert!(login_over(&app).await.contains("Secure"));
    // From a peer that is not a trusted proxy, the header is not believed.
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    assert!(!login_over(&app).await.contains("Secure"));
}

#[tokio::test]
async fn every_console_page_redirects_to_login_when_logged_out() {
    let app = TestApp::spawn().await;
    let mut c = Console::new(&app);
    for page in PAGES {
        let r = c.get(page).await;
        assert_eq!(r.status, 303, "{page}");
        let to = r.location.unwrap();
        assert!(to.starts_with("/admin/login"), "{page} -> {to}");
    }
    for form in FORMS {
        let r = c.post(form, &[("csrf", "x")]).await;
        assert_eq!(r.location.as_deref(), Some("/admin/login"), "POST {form}");
    }
    // A forged cookie is no session.
    c.cookie = Some("forged".into());
    assert_eq!(c.get("/admin").await.status, 303);
    let login = c.page("/admin/login").await;
    assert!(login.contains("Log in"));
}

#[tokio::test]
async fn posts_without_or_with_a_wrong_csrf_token_are_rejected() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    for form in [vec![], vec![("csrf", "wrong")], vec![("csrf", "")]] {
        let r = c.post("/admin/logout", &form).await;
        assert_eq!(r.status, 403);
        assert!(r.body.contains("Form rejected"), "{}", r.body);
    }
    // Nothing changed: the session still works.
    assert!(c.page("/admin").await.contains("Log out"));
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    let stolen = c.cookie.clone();
    let r = c.submit("/admin/logout", &[]).await;
    assert_eq!(r.status, 303);
    assert!(c.cookie.is_none());
    assert!(c.last_set_cookie.clone().unwrap().contains("Max-Age=0"));
    // The old cookie value no longer opens a session.
    c.cookie = stolen;
    assert_eq!(
        c.get("/admin").await.location.as_deref(),
        Some("/admin/login")
    );
}

#[tokio::test]
async fn an_expired_session_sends_the_admin_back_to_login() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    assert_eq!(c.get("/admin").await.status, 200);
    // Used just before the idle timeout ends, the session is extended by a full one.
    let idle = hookbox::service::sessions::IDLE;
    app.clock.advance(idle - std::time::Duration::from_secs(60));
    assert_eq!(c.get("/admin").await.status, 200);
    app.clock.advance(idle - std::time::Duration::from_secs(60));
    assert_eq!(c.get("/admin").await.status, 200);
    // Left alone past it, the session ends.
    app.clock.advance(idle + std::time::Duration::from_secs(1));
    assert_eq!(
        c.get("/admin").await.location.as_deref(),
        Some("/admin/login")
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_rate_limited() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    for _ in 0..5 {
        assert_eq!(c.login("admin", "wrong password!").await.status, 401);
    }
    // Even the right password is turned away for now.
    let r = c.login("admin", PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many"));
    assert_eq!(r.retry_after.as_deref(), Some("60"));
    assert!(c.cookie.is_none());
    // Another username from the same address is not affected.
    assert_eq!(c.login("someone", "wrong password!").await.status, 401);
}

/// Others failing for a username from many addresses at once book its checks far ahead
/// (each waits its turn, a second apart; past 15 s they are refused): a browser its admin
/// logged in from before still gets in at once with the right password, from an address
/// that has not failed. A browser it never logged in from waits like the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn others_failing_for_a_username_do_not_lock_out_a_browser_its_admin_logged_in_from() {
    let app =
        TestApp::spawn_with(|cfg| cfg.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
            .await;
    let mut owner = Console::first_admin(&app).await;
    assert!(owner.known_cookie.is_some(), "the setup's browser is known");
    owner.submit("/admin/logout", &[]).await;
    let from = |n: u8| [("x-forwarded-for", format!("192.0.2.{n}"))];

    // Five failures from one address start the slowdown for the username.
    let mut attacker = Console::new(&app);
    for _ in 0..5 {
        let r = attacker
            .login_with_headers(
                "admin",
                "wrong password!",
                &[("x-forwarded-for", "192.0.2.10")],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // Then many addresses at once, each failing once: their checks are booked a second apart
    // until the next turn is more than 15 s away, and refused from there on.
    let mut queued = Vec::new();
    let (refused_tx, mut refused) = tokio::sync::mpsc::unbounded_channel();
    for n in 20..45u8 {
        let mut c = Console::new(&app);
        let token = c.login_token().await;
        let tx = refused_tx.clone();
        queued.push(tokio::spawn(async move {
            let [(h, v)] = from(n);
            let r = c
                .post_with_headers(
                    "/admin/login",
                    &[
                        ("login_csrf", token.as_str()),
                        ("username", "admin"),
                        ("password", "wrong password!"),
                    ],
                    &[(h, v.as_str())],
                )
                .await;
            if r.status == 429 {
                let _ = tx.send(());
            }
        }));
    }
    tokio::time::timeout(std::time::Duration::from_secs(30), refused.recv())
        .await
        .expect("checks booked more than 15 s ahead are refused");

    // A browser the admin never used, from a fresh address, waits its turn like the rest;
    // so does one with a cookie that is not the server's.
    let mut stranger = Console::new(&app);
    let r = stranger
        .login_with_headers("admin", PASSWORD, &[("x-forwarded-for", "192.0.2.98")])
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let known = owner.known_cookie.clone().unwrap();
    let (at, _) = known.split_once('.').unwrap();
    stranger.known_cookie = Some(format!("{at}.{}", "0".repeat(64)));
    let r = stranger
        .login_with_headers("admin", PASSWORD, &[("x-forwarded-for", "192.0.2.97")])
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    // The owner's browser, from a fresh address: in at once.
    let asked = std::time::Instant::now();
    let r = owner
        .login_with_headers("admin", PASSWORD, &[("x-forwarded-for", "192.0.2.99")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(owner.cookie.is_some());
    assert!(asked.elapsed() < std::time::Duration::from_secs(5));
    for q in queued {
        q.abort();
    }
}

#[tokio::test]
async fn login_limits_are_kept_in_the_database_through_a_restart_until_their_window_ends() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    for _ in 0..5 {
        assert_eq!(c.login("admin", "wrong password!").await.status, 401);
    }
    let app = app.restart_with(|_| {}).await;
    let mut c = Console::new(&app);
    assert_eq!(c.login("admin", PASSWORD).await.status, 429);
    // A minute later (by the server's clock) the right password works again.
    app.clock.advance(std::time::Duration::from_secs(61));
    let r = c.login("admin", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(c.cookie.is_some());
}

#[tokio::test]
async fn static_files_are_served_with_cache_headers() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let url = format!("{}/admin/static/admin.css", app.root);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = client
        .get(format!("{}/admin/static/nope.css", app.root))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Runs `hookbox admin …` (parsed like the real command line) in this process.
fn run_admin_cli(dir: &std::path::Path, args: &[&str], stdin: &str) -> Result<String, String> {
    use clap::Parser;
    let mut argv = vec!["hookbox"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--data-dir", dir.to_str().unwrap()]);
    let url = crate::support::storage::postgres_url(dir);
    if let Some(url) = &url {
        argv.extend_from_slice(&["--database-url", url]);
    }
    let cli = hookbox::cli::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let Some(hookbox::cli::Command::Admin { action }) = cli.command else {
        return Err("not an admin command".into());
    };
    hookbox::cli::admin(action, &mut stdin.as_bytes()).map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn admin_cli_creates_admins_and_resets_passwords_while_the_server_runs() {
    let app = TestApp::spawn().await;
    let dir = app.dir.path().to_path_buf();
    let create = ["admin", "create", "--username", "ops"];
    run_admin_cli(&dir, &create, "first password 1\n").unwrap();
    let mut c = Console::new(&app);
    assert_eq!(c.login("ops", "first password 1").await.status, 303);
    // The same name again is refused; so is a short password.
    let err = run_admin_cli(&dir, &create, "first password 1\n").unwrap_err();
    assert!(err.contains("already exists"), "{err}");
    let err = run_admin_cli(&dir, &["admin", "create", "--username", "x"], "short\n").unwrap_err();
    assert!(err.contains("password refused"), "{err}");
    // A new password (here from a file) ends the admin's sessions.
    let pw_file = dir.join("pw.txt");
    std::fs::write(&pw_file, "second password 2\n").unwrap();
    let reset = [
        "admin",
        "reset-password",
        "--username",
        "ops",
        "--password-file",
        pw_file.to_str().unwrap(),
    ];
    run_admin_cli(&dir, &reset, "").unwrap();
    assert_eq!(c.get("/admin").await.status, 303);
    assert_eq!(c.login("ops", "first password 1").await.status, 401);
    assert_eq!(c.login("ops", "second password 2").await.status, 303);
    let reset_nobody = ["admin", "reset-password", "--username", "nobody"];
    let err = run_admin_cli(&dir, &reset_nobody, "whatever password\n").unwrap_err();
    assert!(err.contains("no admin named"), "{err}");
}

/// Forms read before a session is checked (the login form here) keep a small body limit;
/// only the Testing tab's takes a payload as large as the API's.
#[tokio::test]
async fn a_login_form_larger_than_any_login_is_refused_unread() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(300 * 1024);
    let r = Console::new(&app)
        .post("/admin/login", &[("username", "admin"), ("password", &big)])
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
}
