//! A test PKI: a CA and leaf certificates (IP and DNS SANs, server and client use) made
//! fresh for each test with rcgen. Files are written mode 0600.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// One leaf: its certificate, its key, and both in one file (as baresip wants them).
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The certificate (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM, mode 0600).
    pub key: PathBuf,
    /// Certificate and key in one PEM file (mode 0600).
    pub combined: PathBuf,
}

/// A CA and its leaves.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA certificate (PEM): the trust store.
    pub ca: PathBuf,
    /// The leaves, in the order asked for.
    pub leaves: Vec<Leaf>,
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write a PEM file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// Makes a CA in `dir` and, per `(name, ip addresses, dns names)`, a leaf signed by it.
pub fn make(dir: &Path, leaves: &[(&str, &[IpAddr], &[&str])]) -> Pki {
    std::fs::create_dir_all(dir).expect("the PKI directory");
    let ca_key = KeyPair::generate().expect("a key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "relay test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("the CA");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).expect("write the CA");
    let leaves = leaves
        .iter()
        .map(|(name, ips, dns)| {
            let key = KeyPair::generate().expect("a key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.distinguished_name.push(DnType::CommonName, *name);
            params.subject_alt_names = ips
                .iter()
                .map(|ip| SanType::IpAddress(*ip))
                .chain(
                    dns.iter()
                        .map(|d| SanType::DnsName((*d).try_into().expect("a DNS name"))),
                )
                .collect();
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).expect("a leaf");
            let leaf = Leaf {
                certificate: dir.join(format!("{name}.crt")),
                key: dir.join(format!("{name}.key")),
                combined: dir.join(format!("{name}.pem")),
            };
            std::fs::write(&leaf.certificate, cert.pem()).expect("write a certificate");
            write_private(&leaf.key, &key.serialize_pem());
            write_private(
                &leaf.combined,
                &format!("{}{}", cert.pem(), key.serialize_pem()),
            );
            leaf
        })
        .collect();
    Pki { ca, leaves }
}
