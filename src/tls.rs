//! Built-in HTTPS: the listener serves a PEM certificate chain and key (`tls_cert`,
//! `tls_key`), read again on SIGHUP and when either file changes on disk (a certbot
//! renewal), without restarting: new connections get the new certificate, open ones keep
//! theirs. Files that do not load leave the current certificate in place.

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How often the files are looked at for a change.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// What identifies a version of a file: its modification time, length, inode and change
/// time (a `chmod` or `chgrp` that makes a renewed key readable is a change too).
type Stamp = Option<(SystemTime, u64, u64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.modified().ok()?,
        m.len(),
        m.ino(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// The certificate served, and where it comes from.
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Served>,
}

#[derive(Debug)]
struct Served {
    key: Arc<CertifiedKey>,
    stamps: (Stamp, Stamp),
}

impl Certificates {
    /// Reads both files; fails, saying why, when they are not a PEM chain and its key.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Certificates>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let served = read(cert, key, &provider)?;
        Ok(Arc::new(Certificates {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(served),
        }))
    }

    /// A rustls configuration serving the current certificate (HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("while setting up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// Reads the files again and serves them from now on; on an error the current
    /// certificate stays.
    fn reload(&self) -> anyhow::Result<()> {
        let served = read(&self.cert, &self.key, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = served;
        Ok(())
    }

    /// Whether either file differs from the version last read (or tried).
    fn changed_on_disk(&self) -> bool {
        let now = (stamp(&self.cert), stamp(&self.key));
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.stamps == now {
            return false;
        }
        // Tried once per change: a half-written pair is tried again when it changes again.
        current.stamps = now;
        true
    }

    /// Reloads (see [`Certificates::reload`]) and says so in the log, with what asked.
    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => tracing::info!(
                cert = %self.cert.display(),
                "TLS certificate reloaded ({why})"
            ),
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "TLS certificate not reloaded ({why}); the previous one is still served"
            ),
        }
    }

    /// Until `cancel`: reloads on each of `hangups` (SIGHUP) and when the files change.
    pub async fn watch(
        self: Arc<Self>,
        mut hangups: Option<tokio::signal::unix::Signal>,
        cancel: CancellationToken,
    ) {
        let mut every = tokio::time::interval(CHECK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                Some(()) = async { hangups.as_mut()?.recv().await } => self.reload_logged("SIGHUP"),
                _ = every.tick() => {
                    if self.changed_on_disk() {
                        self.reload_logged("the files changed");
                    }
                }
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .key
                .clone(),
        )
    }
}

fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<Served> {
    // Stamped before reading: a change made while reading is seen at the next look.
    let stamps = (stamp(cert), stamp(key));
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{}: no certificate in it (a PEM file with -----BEGIN CERTIFICATE----- blocks)",
        cert.display()
    );
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        anyhow::anyhow!(
            "{} and {}: {e} (is the key the certificate's?)",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Served {
        key: Arc::new(certified),
        stamps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        (cert, key, c.cert.der().to_vec())
    }

    fn served(c: &Certificates) -> Vec<u8> {
        c.current.read().unwrap().key.cert[0].to_vec()
    }

    #[test]
    fn refuses_files_that_are_not_a_certificate_and_its_key_and_keeps_the_served_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, der) = pair(dir.path(), "a");
        let (_, other_key, _) = pair(dir.path(), "b");
        let err = Certificates::load(&cert, &other_key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is the key the certificate's"), "{err}");
        let err = Certificates::load(&key, &key).unwrap_err().to_string();
        assert!(err.contains("no certificate in it"), "{err}");
        let err = Certificates::load(&cert, &cert).unwrap_err().to_string();
        assert!(err.contains("not a PEM private key"), "{err}");

        let c = Certificates::load(&cert, &key).unwrap();
        std::fs::write(&cert, "garbage").unwrap();
        assert!(c.changed_on_disk());
        assert!(c.reload().is_err());
        assert_eq!(served(&c), der);
        // Looked at once per change.
        assert!(!c.changed_on_disk());
    }

    #[test]
    fn a_changed_pair_is_seen_and_served() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = pair(dir.path(), "a");
        let c = Certificates::load(&cert, &key).unwrap();
        assert!(!c.changed_on_disk());
        let (cert2, key2, der2) = pair(dir.path(), "b");
        std::fs::rename(cert2, &cert).unwrap();
        std::fs::rename(key2, &key).unwrap();
        assert!(c.changed_on_disk());
        c.reload().unwrap();
        assert_eq!(served(&c), der2);
        // A key made readable after a renewal is a change too.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(c.changed_on_disk());
    }
}
