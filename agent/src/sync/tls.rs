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

/// Builds the client configuration for the collector.
pub fn client_config(collector: &CollectorConfig) -> Result<Arc<ClientConfig>, String> {
    let ca_file = match &collector.ca_file {
        Some(path) => path.clone(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| "no collector.ca_file set and no system CA bundle found".to_string())?,
    };
    let mut roots = RootCertStore::empty();
    let ca_key = if collector.ca_file.is_some() {
        "collector.ca_file"
    } else {
        "system CA bundle"
    };
    for cert in read_certs(&ca_file).map_err(|e| format!("{ca_key}: {e}"))? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: unusable CA certificate: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let config = match (&collector.client_cert_file, &collector.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert).map_err(|e| format!("collector.client_cert_file: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!(
                    "collector.client_key_file: {}: no usable private key: {e}",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: client certificate: {e}", cert.display()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}
