//! TLS for SIP (rustls, TLS 1.2 and 1.3 only, with the ECDHE-RSA/ECDSA AES-GCM suites): our
//! certificate chain and key for both directions (server, and client certificate on
//! outbound connections), and per trunk the trust store its peers' certificates must chain
//! to. Nothing is built in: Microsoft's roots change, so they come from the trunk's file.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct TlsError {
    /// What was being loaded.
    pub what: String,
    /// Why it failed.
    pub detail: String,
}

fn err(what: impl Into<String>, detail: impl std::fmt::Display) -> TlsError {
    TlsError {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// Our identity: the chain (leaf first) and its key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity({} certificates, <key redacted>)",
            self.chain.len()
        )
    }
}

impl Identity {
    /// Loads a PEM chain and a PEM private key.
    pub fn load(certificate: &Path, private_key: &Path) -> Result<Identity, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
            .map_err(|e| err(format!("certificate {}", certificate.display()), e))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(format!("certificate {}", certificate.display()), e))?;
        if chain.is_empty() {
            return Err(err(
                format!("certificate {}", certificate.display()),
                "no CERTIFICATE block in the file",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(private_key)
            .map_err(|e| err(format!("private key {}", private_key.display()), e))?;
        Ok(Identity { chain, key })
    }

    fn pair(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key.clone_key())
    }
}

/// Loads a PEM CA bundle.
pub fn trust_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("trust store {}", path.display()), e))?
    {
        let cert = cert.map_err(|e| err(format!("trust store {}", path.display()), e))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("trust store {}", path.display()), e))?;
    }
    if roots.is_empty() {
        return Err(err(
            format!("trust store {}", path.display()),
            "no CA certificate in the file",
        ));
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: our chain; client certificates requested and, if `client_roots` is set,
/// verified against it (unauthenticated clients are let through here and refused by trunk
/// afterwards where the trunk requires a certificate).
pub fn server_config(
    identity: &Identity,
    client_roots: Option<RootCertStore>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err("TLS versions", e))?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| err("client certificate verifier", e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let (chain, key) = identity.pair();
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| err("our certificate and key", e))?;
    Ok(Arc::new(config))
}

/// The client side towards one trunk: its trust store, and our chain as client certificate.
pub fn client_config(
    identity: &Identity,
    roots: RootCertStore,
) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| err("server certificate verifier", e))?;
    let (chain, key) = identity.pair();
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err("TLS versions", e))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|e| err("our client certificate", e))?;
    Ok(Arc::new(config))
}
