//! The server's rustls config: TLS 1.2 and 1.3 with the ring provider, the server
//! certificate, and, when `client_ca_file` is set, required client certificates verified
//! against it with [`WebPkiClientVerifier`]. The operator listeners use the same setup
//! with their own certificate and no client certificates.

use crate::config::{OperatorTls, TlsConfig};
use assent_confcheck::{Diagnostic, Diagnostics};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// PEM files above this are refused: a chain is a few kilobytes.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

fn read_pem(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    assent_confcheck::read_text(path, MAX_PEM_BYTES)
        .map(String::into_bytes)
        .map_err(|e| e.diagnostic)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Diagnostic> {
    let pem = read_pem(path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    let certs =
        certs.map_err(|e| Diagnostic::whole_file(path, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Diagnostic::whole_file(
            path,
            "no PEM certificate in the file",
        ));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Diagnostic> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| Diagnostic::whole_file(path, format!("no usable PEM private key: {e}")))
}

/// Builds the rustls server config. Every unreadable or unusable file is reported.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, Diagnostics> {
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(Diagnostic::whole_file(
            Path::new("[tls]"),
            "cert_file and key_file are needed when tls is enabled",
        )
        .into());
    };
    build(cert_file, key_file, tls.client_ca_file.as_deref())
}

/// The same for an operator listener (`[metrics]`, `[console]`): its certificate and
/// key, no client certificates.
pub fn operator_server_config(tls: &OperatorTls) -> Result<Arc<ServerConfig>, Diagnostics> {
    build(&tls.cert_file, &tls.key_file, None)
}

fn build(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<Arc<ServerConfig>, Diagnostics> {
    let mut problems = Vec::new();
    let chain = certificates(cert_file).map_err(|d| problems.push(d)).ok();
    let key = private_key(key_file).map_err(|d| problems.push(d)).ok();
    let roots = client_ca_file.and_then(|ca| {
        let certs = certificates(ca).map_err(|d| problems.push(d)).ok()?;
        let mut roots = RootCertStore::empty();
        let (_, bad) = roots.add_parsable_certificates(certs);
        if bad > 0 || roots.is_empty() {
            problems.push(Diagnostic::whole_file(
                ca,
                format!("{bad} CA certificate(s) could not be used"),
            ));
            return None;
        }
        Some((ca.to_path_buf(), roots))
    });
    let (Some(chain), Some(key)) = (chain, key) else {
        return Err(Diagnostics(problems));
    };
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Diagnostic::whole_file(cert_file, format!("tls setup: {e}")))?;
    let builder = match roots {
        Some((ca, roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Diagnostic::whole_file(&ca, format!("client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| Diagnostic::whole_file(key_file, format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
