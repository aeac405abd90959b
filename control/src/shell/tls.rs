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

/// What an operator should hear about our certificate: its SAN does not hold `fqdn` (Teams
/// refuses the SBC then), or it expires within 30 days, or has expired. `now_unix` is the
/// current time in seconds since the Unix epoch.
pub fn certificate_warnings(identity: &Identity, fqdn: &str, now_unix: i64) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(leaf) = identity.chain.first() else {
        return vec!["no certificate".into()];
    };
    let cert = match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, c)) => c,
        Err(e) => return vec![format!("the certificate cannot be read: {e}")],
    };
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let fqdn = fqdn.to_ascii_lowercase();
    let covers = |n: &String| {
        *n == fqdn
            || n.strip_prefix("*.").is_some_and(|rest| {
                fqdn.split_once('.')
                    .is_some_and(|(_, parent)| parent == rest)
            })
    };
    if !names.iter().any(covers) {
        warnings.push(format!(
            "the certificate's subject alternative names ({}) do not hold sbc.fqdn {fqdn}: Teams refuses such an SBC",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        ));
    }
    let not_after = cert.validity().not_after.timestamp();
    let days = (not_after - now_unix) / 86_400;
    if not_after <= now_unix {
        warnings.push("the certificate has expired: renew it and send SIGHUP".into());
    } else if days < 30 {
        warnings.push(format!(
            "the certificate expires in {days} days: renew it and send SIGHUP"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(names: &[&str], days: i64) -> (tempfile::TempDir, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("c.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("k.pem"), key.serialize_pem()).unwrap();
        let id = Identity::load(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
        (dir, id)
    }

    #[test]
    fn a_certificate_that_does_not_name_us_or_is_about_to_expire_is_reported() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (_d, good) = identity(&["sbc.example.com"], 365);
        assert!(certificate_warnings(&good, "sbc.example.com", now).is_empty());
        let (_d, wild) = identity(&["*.example.com"], 365);
        assert!(certificate_warnings(&wild, "sbc.example.com", now).is_empty());
        let w = certificate_warnings(&good, "other.example.com", now);
        assert!(
            w[0].contains("do not hold sbc.fqdn other.example.com"),
            "{w:?}"
        );
        let (_d, soon) = identity(&["sbc.example.com"], 10);
        let w = certificate_warnings(&soon, "sbc.example.com", now);
        assert!(
            w[0].contains("expires in 9 days") || w[0].contains("expires in 10 days"),
            "{w:?}"
        );
        let w = certificate_warnings(&soon, "sbc.example.com", now + 11 * 86_400);
        assert!(w[0].contains("has expired"), "{w:?}");
        assert!(server_config(&good, None).is_ok());
    }
}
