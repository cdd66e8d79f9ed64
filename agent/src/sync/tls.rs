//! The TLS client configuration: rustls with the ring provider, TLS 1.2 at least, the
//! server verified against the configured CA (or the system roots) with its host name
//! checked. There is deliberately no way to turn verification off.

use crate::config::CollectorConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where distributions keep their CA bundle, tried in order when no `ca_file` is set.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// Why the TLS client configuration could not be built.
#[derive(Debug)]
pub enum TlsError {
    /// No `ca_file` is configured and no system bundle exists.
    NoCaBundle,
    /// A PEM file could not be read.
    Pem(PathBuf, rustls::pki_types::pem::Error),
    /// A certificate file holds no certificate.
    NoCertificate(PathBuf),
    /// rustls refused a CA certificate.
    BadCa(PathBuf, rustls::Error),
    /// rustls refused the protocol versions.
    Setup(rustls::Error),
    /// The client key file holds no usable key.
    Key(PathBuf, rustls::pki_types::pem::Error),
    /// rustls refused the client certificate and key.
    ClientCert(PathBuf, rustls::Error),
    /// One of the above, for the file the config key names.
    Keyed(&'static str, Box<TlsError>),
}

impl TlsError {
    fn keyed(self, key: &'static str) -> TlsError {
        TlsError::Keyed(key, Box::new(self))
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::NoCaBundle => {
                f.write_str("no collector.ca_file set and no system CA bundle found")
            }
            TlsError::Pem(path, e) => write!(f, "{}: {e}", path.display()),
            TlsError::NoCertificate(path) => {
                write!(f, "{}: no PEM certificate in it", path.display())
            }
            TlsError::BadCa(path, e) => {
                write!(f, "{}: unusable CA certificate: {e}", path.display())
            }
            TlsError::Setup(e) => write!(f, "TLS setup: {e}"),
            TlsError::Key(path, e) => write!(f, "{}: no usable private key: {e}", path.display()),
            TlsError::ClientCert(path, e) => {
                write!(f, "{}: client certificate: {e}", path.display())
            }
            TlsError::Keyed(key, e) => write!(f, "{key}: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Builds the client configuration for the collector.
pub fn client_config(collector: &CollectorConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let ca_file = match &collector.ca_file {
        Some(path) => path.clone(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or(TlsError::NoCaBundle)?,
    };
    let mut roots = RootCertStore::empty();
    let ca_key = if collector.ca_file.is_some() {
        "collector.ca_file"
    } else {
        "system CA bundle"
    };
    for cert in read_certs(&ca_file).map_err(|e| e.keyed(ca_key))? {
        roots
            .add(cert)
            .map_err(|e| TlsError::BadCa(ca_file.clone(), e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_root_certificates(roots);
    let config = match (&collector.client_cert_file, &collector.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert).map_err(|e| e.keyed("collector.client_cert_file"))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsError::Key(key.clone(), e).keyed("collector.client_key_file"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::ClientCert(cert.clone(), e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |e| TlsError::Pem(path.to_path_buf(), e);
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}
