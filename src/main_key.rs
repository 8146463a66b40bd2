//! Where the main key comes from, the key file's life cycle and `rotate-main-key`.
//!
//! The key comes from `HOOKBOX_MAIN_KEY` (base64), else from a configured file
//! (`main_key_file` / `HOOKBOX_MAIN_KEY_FILE`), else from `hookbox.key` in the data dir, which
//! the first start creates (mode 0600). A key file readable by group or others is refused.
//!
//! Rotation with the data-dir key file, and its crash windows:
//! 1. the new key is written to `hookbox.key.new` (0600, synced);
//! 2. every secret is re-sealed under it in one committed transaction;
//! 3. `hookbox.key.new` is renamed over `hookbox.key` (and the directory synced).
//!
//! A crash before 2 commits leaves the old key current and a stale `hookbox.key.new`; a crash
//! between 2 and 3 leaves the database under the key in `hookbox.key.new`. The next start (or
//! rotation) finds which of the two opens the stored secrets, finishes or discards the
//! rotation, and goes on. With a key from configuration, hookbox prints the new key before
//! committing; until the configuration is updated, the server refuses to start.

use crate::config::Config;
use crate::db;
use crate::domain::crypto::MainKey;
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the key file created in the data dir when no key is configured.
pub const KEY_FILE: &str = "hookbox.key";
const PENDING_SUFFIX: &str = ".new";

/// Where the main key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `HOOKBOX_MAIN_KEY`.
    Env,
    /// A file named by `main_key_file` / `HOOKBOX_MAIN_KEY_FILE`; never written by hookbox.
    ConfiguredFile(PathBuf),
    /// `hookbox.key` in the data dir, managed by hookbox.
    DataDirFile(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => f.write_str("HOOKBOX_MAIN_KEY"),
            KeySource::ConfiguredFile(p) => write!(f, "the configured key file {}", p.display()),
            KeySource::DataDirFile(p) => write!(f, "the key file {}", p.display()),
        }
    }
}

pub fn source(cfg: &Config) -> KeySource {
    if cfg.main_key.is_some() {
        KeySource::Env
    } else if let Some(p) = &cfg.main_key_file {
        KeySource::ConfiguredFile(p.clone())
    } else {
        KeySource::DataDirFile(cfg.data_dir.join(KEY_FILE))
    }
}

/// The main key for `cfg`, creating the data-dir key file when none is configured and the
/// database holds no sealed secret yet. Finishes or discards an interrupted rotation.
/// Call with the data dir locked.
pub fn load_or_create(cfg: &Config) -> anyhow::Result<(MainKey, KeySource)> {
    let source = source(cfg);
    let key = match &source {
        KeySource::Env => {
            let b64 = cfg.main_key.as_ref().map_or("", |k| k.expose());
            MainKey::from_base64(b64).context("while reading HOOKBOX_MAIN_KEY")?
        }
        KeySource::ConfiguredFile(p) => read_key_file(p)?,
        KeySource::DataDirFile(_) if cfg.on_postgres() => anyhow::bail!(
            "on PostgreSQL the main key must come from configuration, the same on every node: \
             set HOOKBOX_MAIN_KEY, HOOKBOX_MAIN_KEY_FILE or main_key_file (a new key: \
             `openssl rand -base64 32`)"
        ),
        KeySource::DataDirFile(p) => {
            finish_interrupted_rotation(&cfg.db_path(), p)?;
            if p.exists() {
                read_key_file(p)?
            } else {
                anyhow::ensure!(
                    !cfg.db_path().exists() || !db::holds_sealed_secrets(&cfg.db_path())?,
                    "the database {} holds encrypted endpoint secrets but the key file {} is \
                     missing: restore it, or set HOOKBOX_MAIN_KEY / main_key_file to the key",
                    cfg.db_path().display(),
                    p.display()
                );
                let key = MainKey::generate();
                write_key_file(p, &key)?;
                tracing::info!(file = %p.display(), "created a main key file");
                key
            }
        }
    };
    Ok((key, source))
}

/// Reads a key file: base64 of 32 bytes, not readable by group or others.
pub fn read_key_file(path: &Path) -> anyhow::Result<MainKey> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("while reading the main key file {}", path.display()))?;
    check_mode(path, &meta)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the main key file {}", path.display()))?;
    MainKey::from_base64(&text)
        .with_context(|| format!("the main key file {} is malformed", path.display()))
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "the main key file {} has mode {mode:o}: it must not be readable by group or others \
         (chmod 600 it)",
        path.display()
    );
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path, _: &std::fs::Metadata) -> anyhow::Result<()> {
    Ok(())
}

/// Writes `key` to `path` atomically: a temporary file created with mode 0600 beside it,
/// synced, renamed over `path`, then the directory synced.
pub fn write_key_file(path: &Path, key: &MainKey) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut f = opts.open(&tmp)?;
        f.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    };
    write().with_context(|| format!("while writing the main key file {}", path.display()))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn pending_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_os_string();
    name.push(PENDING_SUFFIX);
    PathBuf::from(name)
}

/// After a crash during `rotate-main-key`: keeps whichever of `hookbox.key` and
/// `hookbox.key.new` opens the stored secrets (the current one when both do).
fn finish_interrupted_rotation(db_path: &Path, key_file: &Path) -> anyhow::Result<()> {
    let pending = pending_path(key_file);
    if !pending.exists() {
        return Ok(());
    }
    let current_opens = key_file.exists() && {
        let current = read_key_file(key_file)?;
        !db_path.exists() || db::sealed_secrets_open_with(db_path, &current)?
    };
    if current_opens {
        tracing::warn!(file = %pending.display(), "discarding the key of an unfinished rotation");
        std::fs::remove_file(&pending)
            .with_context(|| format!("while removing {}", pending.display()))?;
        return Ok(());
    }
    let new = read_key_file(&pending)?;
    if db::sealed_secrets_open_with(db_path, &new)? {
        tracing::warn!(file = %key_file.display(), "finishing an interrupted main key rotation");
        std::fs::rename(&pending, key_file)
            .and_then(|()| sync_dir(key_file.parent().unwrap_or(Path::new("."))))
            .with_context(|| format!("while replacing {}", key_file.display()))?;
    }
    Ok(())
}

/// What `rotate-main-key` did.
pub enum Rotated {
    /// The data-dir key file now holds the new key.
    KeyFileReplaced { path: PathBuf, secrets: usize },
    /// The key comes from configuration: the operator must install the new key.
    UpdateConfiguration { source: KeySource, secrets: usize },
}

/// Re-seals every endpoint secret under a fresh main key (see the module docs for the
/// order of the steps). `announce` is called with the new key before the database changes
/// when the key comes from configuration, so that a crash cannot lose it.
/// Call with the data dir locked (no server running).
pub fn rotate(cfg: &Config, announce: impl FnOnce(&MainKey) + Send) -> anyhow::Result<Rotated> {
    let (old, source) = load_or_create(cfg)?;
    if let Some(url) = &cfg.database_url {
        return rotate_on_postgres(cfg, url, &old, source, announce);
    }
    let db_path = cfg.db_path();
    anyhow::ensure!(
        db::sealed_secrets_open_with(&db_path, &old)?,
        "the stored endpoint secrets do not decrypt with the main key from {source}"
    );
    let new = MainKey::generate();
    match source {
        KeySource::DataDirFile(path) => {
            let pending = pending_path(&path);
            write_key_file(&pending, &new)?;
            let secrets = db::reseal_secrets(&db_path, &old, &new)
                .context("while re-encrypting the endpoint secrets")?;
            std::fs::rename(&pending, &path)
                .and_then(|()| sync_dir(path.parent().unwrap_or(Path::new("."))))
                .with_context(|| format!("while replacing {}", path.display()))?;
            Ok(Rotated::KeyFileReplaced { path, secrets })
        }
        source => {
            announce(&new);
            let secrets = db::reseal_secrets(&db_path, &old, &new)
                .context("while re-encrypting the endpoint secrets")?;
            Ok(Rotated::UpdateConfiguration { source, secrets })
        }
    }
}

/// `rotate` on PostgreSQL: the key comes from configuration, the same on every node, so the
/// operator installs the new one on each; every node must be stopped first.
fn rotate_on_postgres(
    cfg: &Config,
    url: &str,
    old: &MainKey,
    source: KeySource,
    announce: impl FnOnce(&MainKey) + Send,
) -> anyhow::Result<Rotated> {
    use crate::db::commands::{reseal_postgres, Resealed};
    let new = MainKey::generate();
    let timeout = crate::domain::time::duration_ms(cfg.database.node_timeout);
    match reseal_postgres(url, old, &new, timeout, || announce(&new))
        .context("while re-encrypting the endpoint secrets")?
    {
        Resealed::Done(secrets) => Ok(Rotated::UpdateConfiguration { source, secrets }),
        Resealed::NodesRunning(n) => anyhow::bail!(
            "{n} node(s) are running on this database (heartbeat within database.node_timeout): \
             stop every node first, since each needs the new key; nothing was changed"
        ),
        Resealed::WrongKey => anyhow::bail!(
            "the stored endpoint secrets do not decrypt with the main key from {source}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn key_file_is_written_with_mode_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let key = MainKey::generate();
        write_key_file(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_key_file(&path).unwrap(), key);
        // Overwriting keeps the mode and replaces the content.
        let other = MainKey::generate();
        write_key_file(&path, &other).unwrap();
        assert_eq!(read_key_file(&path).unwrap(), other);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_readable_by_others_or_malformed_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        write_key_file(&path, &MainKey::generate()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", read_key_file(&path).unwrap_err());
        assert!(err.contains("644") && err.contains("chmod 600"), "{err}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        let err = format!("{:#}", read_key_file(&path).unwrap_err());
        assert!(err.contains("malformed"), "{err}");
    }
}
