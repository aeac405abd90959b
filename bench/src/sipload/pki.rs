//! A throwaway PKI for one benchmark run: a CA, the SBC's certificate (its signalling
//! addresses and a DNS name) and the UAS's (its listening address), made with rcgen and
//! written mode 0600 into the run's directory. The same files serve relay-control and
//! Kamailio, so both sides of the comparison do the same TLS work.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The files of one run's PKI.
#[derive(Clone, Debug)]
pub struct BenchPki {
    /// The CA certificate (PEM): every trust store.
    pub ca: PathBuf,
    /// The SBC's certificate (PEM).
    pub sbc_cert: PathBuf,
    /// The SBC's key (PEM, mode 0600).
    pub sbc_key: PathBuf,
    /// The UAS's certificate (PEM).
    pub uas_cert: PathBuf,
    /// The UAS's key (PEM, mode 0600).
    pub uas_key: PathBuf,
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))
}

fn leaf(
    name: &str,
    ips: &[IpAddr],
    dns: &[&str],
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    for d in dns {
        params
            .subject_alt_names
            .push(SanType::DnsName((*d).try_into()?));
    }
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, ca, ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Makes the CA and both leaves in `dir`.
pub fn make(
    dir: &Path,
    sbc_ips: &[IpAddr],
    sbc_dns: &[&str],
    uas_ips: &[IpAddr],
) -> Result<BenchPki> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sip-bench throwaway CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let pki = BenchPki {
        ca: dir.join("ca.pem"),
        sbc_cert: dir.join("sbc.crt"),
        sbc_key: dir.join("sbc.key"),
        uas_cert: dir.join("uas.crt"),
        uas_key: dir.join("uas.key"),
    };
    std::fs::write(&pki.ca, ca_cert.pem())?;
    let (cert, key) = leaf("sbc", sbc_ips, sbc_dns, &ca_cert, &ca_key)?;
    std::fs::write(&pki.sbc_cert, cert)?;
    write_private(&pki.sbc_key, &key)?;
    let (cert, key) = leaf("uas", uas_ips, &[], &ca_cert, &ca_key)?;
    std::fs::write(&pki.uas_cert, cert)?;
    write_private(&pki.uas_key, &key)?;
    Ok(pki)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client that trusts only `ca` (no client certificate).
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| anyhow!("{}: {e}", ca.display()))? {
        roots.add(cert.map_err(|e| anyhow!("{}: {e}", ca.display()))?)?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS server with `cert` and `key` (no client certificates asked for).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow!("{}: {e}", key.display()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}
