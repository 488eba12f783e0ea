//! The DTLS certificate and its SDP fingerprint (RFC 8122 `a=fingerprint`).

use super::DtlsError;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509Ref};

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint(pub [u8; 32]);

impl core::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_sdp())
    }
}

impl Fingerprint {
    /// The fingerprint of a certificate.
    pub fn of(cert: &X509Ref) -> Result<Fingerprint, DtlsError> {
        let d = cert
            .digest(MessageDigest::sha256())
            .map_err(|e| DtlsError::Ssl(e.to_string()))?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&d);
        Ok(Fingerprint(out))
    }

    /// The SDP value: `sha-256 AB:CD:…`.
    pub fn to_sdp(&self) -> String {
        let hex: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        format!("sha-256 {}", hex.join(":"))
    }

    /// Parses an SDP value; only SHA-256 (what browsers send) is accepted.
    pub fn parse_sdp(value: &str) -> Option<Fingerprint> {
        let (alg, hex) = value.trim().split_once(' ')?;
        if !alg.eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let mut out = [0u8; 32];
        let mut parts = hex.trim().split(':');
        for b in out.iter_mut() {
            *b = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        parts.next().is_none().then_some(Fingerprint(out))
    }
}

/// A self-signed ECDSA P-256 certificate for DTLS (browsers accept any
/// certificate whose fingerprint matches the SDP).
pub struct Certificate {
    pub(crate) key: PKey<Private>,
    pub(crate) x509: X509,
    fingerprint: Fingerprint,
}

impl Certificate {
    /// Generates a key and a certificate valid for 30 days.
    pub fn generate() -> Result<Certificate, DtlsError> {
        let ssl = |e: openssl::error::ErrorStack| DtlsError::Ssl(e.to_string());
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ssl)?;
        let key = PKey::from_ec_key(EcKey::generate(&group).map_err(ssl)?).map_err(ssl)?;
        let mut name = X509NameBuilder::new().map_err(ssl)?;
        name.append_entry_by_nid(Nid::COMMONNAME, "switchyard")
            .map_err(ssl)?;
        let name = name.build();
        let mut b = X509Builder::new().map_err(ssl)?;
        b.set_version(2).map_err(ssl)?;
        let mut serial = BigNum::new().map_err(ssl)?;
        serial.rand(64, MsbOption::MAYBE_ZERO, false).map_err(ssl)?;
        let serial = serial.to_asn1_integer().map_err(ssl)?;
        b.set_serial_number(&serial).map_err(ssl)?;
        b.set_subject_name(&name).map_err(ssl)?;
        b.set_issuer_name(&name).map_err(ssl)?;
        b.set_pubkey(&key).map_err(ssl)?;
        let (from, until) = (
            Asn1Time::days_from_now(0).map_err(ssl)?,
            Asn1Time::days_from_now(30).map_err(ssl)?,
        );
        b.set_not_before(&from).map_err(ssl)?;
        b.set_not_after(&until).map_err(ssl)?;
        b.sign(&key, MessageDigest::sha256()).map_err(ssl)?;
        let x509 = b.build();
        let fingerprint = Fingerprint::of(&x509)?;
        Ok(Certificate {
            key,
            x509,
            fingerprint,
        })
    }

    /// The fingerprint to put in the SDP.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The private key (PKCS#8 PEM, zeroized on drop) and the certificate
    /// (PEM), for the control plane's saved state in the shared region.
    pub fn to_pem(&self) -> Result<(zeroize::Zeroizing<String>, String), DtlsError> {
        let ssl = |e: openssl::error::ErrorStack| DtlsError::Ssl(e.to_string());
        let key = zeroize::Zeroizing::new(self.key.private_key_to_pem_pkcs8().map_err(ssl)?);
        let cert = self.x509.to_pem().map_err(ssl)?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok((zeroize::Zeroizing::new(text(&key)), text(&cert)))
    }

    /// A certificate back from [`Certificate::to_pem`]'s output.
    pub fn from_pem(key: &str, cert: &str) -> Result<Certificate, DtlsError> {
        let ssl = |e: openssl::error::ErrorStack| DtlsError::Ssl(e.to_string());
        let key = PKey::private_key_from_pem(key.as_bytes()).map_err(ssl)?;
        let x509 = X509::from_pem(cert.as_bytes()).map_err(ssl)?;
        let fingerprint = Fingerprint::of(&x509)?;
        Ok(Certificate {
            key,
            x509,
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_through_sdp() {
        let c = Certificate::generate().unwrap();
        let sdp = c.fingerprint().to_sdp();
        assert!(sdp.starts_with("sha-256 ") && sdp.len() == 8 + 32 * 3 - 1);
        assert_eq!(Fingerprint::parse_sdp(&sdp), Some(c.fingerprint()));
        assert_eq!(
            Fingerprint::parse_sdp(&sdp.to_lowercase()),
            Some(c.fingerprint())
        );
        assert_eq!(Fingerprint::parse_sdp("sha-1 AB:CD"), None);
        assert_eq!(Fingerprint::parse_sdp(&format!("{sdp}:00")), None);
        assert_eq!(Fingerprint::parse_sdp("sha-256 zz"), None);
        assert_ne!(
            Certificate::generate().unwrap().fingerprint(),
            c.fingerprint()
        );
        let (key, cert) = c.to_pem().unwrap();
        let back = Certificate::from_pem(&key, &cert).unwrap();
        assert_eq!(back.fingerprint(), c.fingerprint());
        assert!(Certificate::from_pem("junk", &cert).is_err());
    }
}
