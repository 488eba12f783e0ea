//! The HTTPS certificate: given PEM files, or a self-signed one generated
//! with `rcgen` on first start and kept, so that a browser's exception for
//! it survives restarts.

use crate::config::TlsSource;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Certificate and key files for the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// True when the certificate is the generated self-signed one.
    pub self_signed: bool,
}

/// Resolves `source` to files, generating the self-signed certificate
/// (for `localhost`, this host's name and `addresses`) if it is missing, or
/// again when the kept one does not name every one of `addresses` (a later
/// `--bind` or `--advertise`), so browsers are never shown a certificate for
/// another address.
pub fn prepare(source: &TlsSource, addresses: &[IpAddr]) -> Result<TlsFiles, String> {
    match source {
        TlsSource::Files { cert, key } => Ok(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            self_signed: false,
        }),
        TlsSource::SelfSigned(dir) => {
            let files = TlsFiles {
                cert: dir.join("tls-cert.pem"),
                key: dir.join("tls-key.pem"),
                self_signed: true,
            };
            if !(files.cert.exists() && files.key.exists()) {
                generate(&files, addresses)?;
            } else if let Some(missing) = uncovered(&files.cert, addresses) {
                tracing::info!(target: "switchyard::tls", address = %missing, "the self-signed certificate does not name this address; making a new one");
                generate(&files, addresses)?;
            }
            Ok(files)
        }
    }
}

/// The first of `addresses` that the certificate at `cert` does not name
/// (an unreadable certificate counts as naming none).
fn uncovered(cert: &Path, addresses: &[IpAddr]) -> Option<IpAddr> {
    let named: Vec<IpAddr> = std::fs::read(cert)
        .ok()
        .and_then(|pem| openssl::x509::X509::from_pem(&pem).ok())
        .and_then(|x| x.subject_alt_names())
        .map(|sans| {
            sans.iter()
                .filter_map(|n| match n.ipaddress()? {
                    b if b.len() == 4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
                    b if b.len() == 16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    addresses
        .iter()
        .find(|a| !a.is_unspecified() && !named.contains(a))
        .copied()
}

fn generate(files: &TlsFiles, addresses: &[IpAddr]) -> Result<(), String> {
    let mut names = vec!["localhost".to_string()];
    if let Ok(h) = rustix::system::uname().nodename().to_str()
        && !h.is_empty()
        && h != "localhost"
    {
        names.push(h.to_string());
    }
    names.extend(["127.0.0.1".to_string(), "::1".to_string()]);
    for a in addresses.iter().filter(|a| !a.is_unspecified()) {
        let a = a.to_string();
        if !names.contains(&a) {
            names.push(a);
        }
    }
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("generating a self-signed certificate: {e}"))?;
    if let Some(dir) = files.cert.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    write_private(&files.key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, made.cert.pem())
        .map_err(|e| format!("writing {}: {e}", files.cert.display()))?;
    tracing::info!(target: "switchyard::tls", cert = %files.cert.display(), "generated a self-signed HTTPS certificate");
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("swyd-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let source = TlsSource::SelfSigned(dir.clone());
        let files = prepare(&source, &[IpAddr::from([10, 1, 2, 3])]).unwrap();
        assert!(files.self_signed);
        let first = std::fs::read(&files.cert).unwrap();
        let x509 = openssl::x509::X509::from_pem(&first).unwrap();
        let sans: Vec<String> = x509
            .subject_alt_names()
            .unwrap()
            .iter()
            .filter_map(|n| {
                n.dnsname()
                    .map(str::to_string)
                    .or_else(|| n.ipaddress().map(|b| format!("{b:?}")))
            })
            .collect();
        assert!(sans.contains(&"localhost".to_string()), "{sans:?}");
        assert!(sans.contains(&"[10, 1, 2, 3]".to_string()), "{sans:?}");
        let mode = std::fs::metadata(&files.key).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        // a second start reuses it
        let again = prepare(&source, &[IpAddr::from([10, 1, 2, 3])]).unwrap();
        assert_eq!(std::fs::read(&again.cert).unwrap(), first);
        // a start with another address gets a certificate that names it
        let moved: IpAddr = "2001:db8::9".parse().unwrap();
        let again = prepare(&source, &[moved]).unwrap();
        assert_ne!(std::fs::read(&again.cert).unwrap(), first);
        assert_eq!(uncovered(&again.cert, &[moved]), None);
        assert_eq!(
            uncovered(&again.cert, &[IpAddr::from([10, 9, 9, 9])]),
            Some(IpAddr::from([10, 9, 9, 9]))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
