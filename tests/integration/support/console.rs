//! A browser stand-in for the console: keeps the session cookie, follows no redirects (tests
//! check them), and finds the CSRF token in a page's forms.

use super::TestApp;

pub const PASSWORD: &str = "a long test password";

#[derive(Clone)]
pub struct Console {
    pub root: String,
    client: reqwest::Client,
    pub cookie: Option<String>,
    /// The login form's anti-forgery cookie.
    pub login_cookie: Option<String>,
    /// A customer portal session's cookie.
    pub portal_cookie: Option<String>,
    /// The cookie that marks a browser an admin logged in from.
    pub known_cookie: Option<String>,
    /// The last `Set-Cookie` header seen, as sent.
    pub last_set_cookie: Option<String>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub retry_after: Option<String>,
}

impl Console {
    /// A client with no session.
    pub fn new(app: &TestApp) -> Console {
        Console {
            root: app.root.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
            login_cookie: None,
            portal_cookie: None,
            known_cookie: None,
            last_set_cookie: None,
        }
    }

    /// Creates the first admin `admin` through the setup link; returns the logged-in client.
    pub async fn first_admin(app: &TestApp) -> Console {
        let mut c = Console::new(app);
        let token = app.setup_token.clone().expect("no admin yet");
        let r = c
            .post(
                "/admin/setup",
                &[
                    ("token", token.as_str()),
                    ("username", "admin"),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{r:?}");
        assert!(c.cookie.is_some());
        c
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Resp {
        let mut cookies = Vec::new();
        if let Some(c) = &self.cookie {
            cookies.push(format!("hookbox_session={c}"));
        }
        if let Some(c) = &self.login_cookie {
            cookies.push(format!("hookbox_login={c}"));
        }
        if let Some(c) = &self.portal_cookie {
            cookies.push(format!("hookbox_portal={c}"));
        }
        if let Some(c) = &self.known_cookie {
            cookies.push(format!("hookbox_known={c}"));
        }
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies.join("; "))
        };
        let resp = req.send().await.expect("request is sent");
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            if let Some(rest) = v.strip_prefix("hookbox_login=") {
                self.login_cookie = Some(rest.split(';').next().unwrap().to_owned());
                continue;
            }
            if let Some(rest) = v.strip_prefix("hookbox_known=") {
                self.known_cookie = Some(rest.split(';').next().unwrap().to_owned());
                continue;
            }
            if let Some(rest) = v.strip_prefix("hookbox_portal=") {
                self.portal_cookie = Some(rest.split(';').next().unwrap().to_owned());
                self.last_set_cookie = Some(v);
                continue;
            }
            let value = v
                .split(';')
                .next()
                .and_then(|kv| kv.strip_prefix("hookbox_session="))
                .unwrap_or_default()
                .to_owned();
            self.cookie = (!value.is_empty() && !v.contains("Max-Age=0")).then_some(value);
            self.last_set_cookie = Some(v);
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = resp.text().await.unwrap();
        Resp {
            status,
            body,
            location,
            retry_after,
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let req = self.client.get(format!("{}{path}", self.root));
        self.send(req).await
    }

    /// A page that must answer 200.
    pub async fn page(&mut self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {r:?}");
        r.body
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let req = self.client.post(format!("{}{path}", self.root)).form(form);
        self.send(req).await
    }

    pub async fn post_with_headers(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.post(format!("{}{path}", self.root)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// The session's CSRF token, read from the logout form of the dashboard.
    pub async fn csrf(&mut self) -> String {
        let body = self.page("/admin").await;
        csrf_in(&body).expect("the page has a CSRF field")
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf().await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        self.post(path, &all).await
    }

    /// Opens the login page (for its anti-forgery token), then logs in.
    pub async fn login(&mut self, user: &str, password: &str) -> Resp {
        self.login_with_headers(user, password, &[]).await
    }

    /// [`Console::login`], the form posted with these request headers.
    pub async fn login_with_headers(
        &mut self,
        user: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let token = self.login_token().await;
        self.post_with_headers(
            "/admin/login",
            &[
                ("login_csrf", &token),
                ("username", user),
                ("password", password),
            ],
            headers,
        )
        .await
    }

    /// The login form's hidden token (its cookie is kept).
    pub async fn login_token(&mut self) -> String {
        let page = self.page("/admin/login").await;
        let marker = "name=\"login_csrf\" value=\"";
        let at = page.find(marker).unwrap() + marker.len();
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    }
}

/// The value of the first `name="csrf"` hidden input of a page.
pub fn csrf_in(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = body[at..].find('"')?;
    Some(body[at..at + end].to_owned())
}
