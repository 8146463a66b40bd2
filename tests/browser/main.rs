//! Browser tests: the admin console in a real headless Chromium, driven through chromedriver
//! (WebDriver), against the real `hookbox` binary and a real HTTP receiver, all on 127.0.0.1.
//!
//! Each test clicks through the console like a person would and checks what really happened
//! (the receiver got signed requests, the API sees the change). Screenshots of the main pages
//! land in `target/screenshots/` for people to look at.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `scripts/test` installs them), or `HOOKBOX_CHROMIUM` and
//! `HOOKBOX_CHROMEDRIVER` pointing elsewhere. Without them the tests fail, unless
//! `HOOKBOX_SKIP_BROWSER_TESTS=1` says to skip them.

#[path = "../integration/support/mod.rs"]
mod support;

mod console;
mod harness;
