//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` over rustls.
//!
//! This module owns the two URL parameters (the driver's own parser knows neither `verify-ca`,
//! `verify-full` nor `sslrootcert`, so they are taken out of the URL before it reaches the driver),
//! the certificate check each mode makes, the plain-text retry of `prefer`, and the words a TLS
//! failure is reported in. The modes mean what they mean to libpq; DESIGN.md ("TLS to PostgreSQL")
//! lists them and the one place where this tool is stricter.

use std::error::Error as _;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use postgres::Client;
use postgres::config::SslMode as DriverMode;
use postgres::tls::{MakeTlsConnect, TlsConnect};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, TlsError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            // libpq's `allow` tries plain text first; nobody choosing a mode today wants that.
            _ => Err(TlsError::UnknownMode {
                value: value.to_string(),
            }),
        }
    }

    fn driver_mode(self) -> DriverMode {
        match self {
            SslMode::Disable => DriverMode::Disable,
            SslMode::Prefer => DriverMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverMode::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// Where the trusted CA certificates come from (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// Not given: `~/.postgresql/root.crt`, used when it exists and required by `verify-*`.
    Default,
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trusted roots.
    System,
}

impl fmt::Display for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCert::Default => match default_root_cert() {
                Some(path) => write!(f, "{}", path.display()),
                None => f.write_str("~/.postgresql/root.crt"),
            },
            RootCert::File(path) => write!(f, "{}", path.display()),
            RootCert::System => f.write_str("the system's trusted roots"),
        }
    }
}

/// A TLS setting that cannot be used, or a TLS connection the server or its certificate refused.
/// Each message is one line and says what to change.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "sslmode={value} is not a mode: use disable, prefer, require, verify-ca or verify-full"
    )]
    UnknownMode { value: String },
    #[error(
        "sslmode={mode} cannot be used with sslrootcert=system, which only makes sense with a host name check: use sslmode=verify-full"
    )]
    WeakModeWithSystemRoots { mode: SslMode },
    #[error(
        "sslmode={mode} verifies the server's certificate, but the root certificate file {path} does not exist: give the CA's certificate with sslrootcert=FILE, use the system's trusted roots with sslrootcert=system, or use sslmode=require to encrypt without verifying the server"
    )]
    RootCertMissing { mode: SslMode, path: String },
    #[error(
        "the root certificate file {path} (sslrootcert) does not exist: correct the path, or leave sslrootcert out to encrypt without verifying the server"
    )]
    NamedRootCertMissing { path: String },
    #[error(
        "cannot read the root certificate file {path} (sslrootcert): {message}; point sslrootcert= at a readable PEM file"
    )]
    RootCertUnreadable { path: String, message: String },
    #[error(
        "the root certificate file {path} (sslrootcert) holds no usable PEM certificate (-----BEGIN CERTIFICATE-----){detail}"
    )]
    RootCertEmpty { path: String, detail: String },
    #[error(
        "sslrootcert=system: this system has no trusted root certificates ({message}); give the CA's certificate with sslrootcert=FILE"
    )]
    NoSystemRoots { message: String },
    #[error("cannot set up TLS: {message}")]
    Setup { message: String },
    #[error(
        "the server's certificate is for {presented}, not for {expected}, and sslmode=verify-full checks the host name: connect to a name the certificate lists, or use sslmode=verify-ca to check only the CA"
    )]
    HostMismatch { expected: String, presented: String },
    #[error(
        "the server's certificate is not signed by a CA in {roots} (sslmode={mode}): set sslrootcert= to the certificate of the CA that signed the server's, or {unverified} to encrypt without verifying the server"
    )]
    UnknownCa {
        mode: SslMode,
        roots: String,
        /// How to do without verification from this mode and root certificate.
        unverified: String,
    },
    #[error("the server's certificate was refused (sslmode={mode}, sslrootcert {roots}): {reason}")]
    CertificateRefused {
        mode: SslMode,
        roots: String,
        reason: String,
    },
    #[error("the TLS handshake with the server failed (sslmode={mode}): {reason}")]
    Handshake { mode: SslMode, reason: String },
    #[error(
        "the server does not accept TLS connections (sslmode={mode}): turn on ssl in the server's postgresql.conf, or use sslmode=prefer to connect without encryption"
    )]
    NoServerTls { mode: SslMode },
    #[error(
        "{server_message} (sslmode=disable): this server accepts only encrypted connections here; use sslmode=require or stronger"
    )]
    EncryptionRequired { server_message: String },
}

/// Why a connection could not be made: a TLS problem this module can name, or anything else the
/// driver reported (bad password, unknown database, refused connection), left to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Driver(postgres::Error),
}

/// The TLS half of a PostgreSQL URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    pub root_cert: RootCert,
}

impl TlsOptions {
    /// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL. Returns the URL the driver
    /// should get (which still holds the password: never show it) and the TLS settings.
    pub fn split_url(url: &str) -> Result<(String, TlsOptions), TlsError> {
        let (base, query) = split_query(url);
        let mut mode = None;
        let mut root_cert = RootCert::Default;
        let mut kept = Vec::new();
        for param in query.into_iter().flat_map(|q| q.split('&')) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            // As in libpq, a parameter given twice takes its last value.
            match super::percent_decode(key).as_str() {
                "sslmode" => mode = Some(SslMode::parse(&super::percent_decode(value))?),
                "sslrootcert" => {
                    let value = super::percent_decode(value);
                    root_cert = match value.as_str() {
                        "" => RootCert::Default,
                        "system" => RootCert::System,
                        _ => RootCert::File(PathBuf::from(value)),
                    };
                }
                _ => kept.push(param),
            }
        }
        let mode = match (mode, &root_cert) {
            // libpq: the system's roots vouch for any public name, so only a name check makes
            // them mean something; the mode defaults to verify-full and weaker ones are refused.
            (None, RootCert::System) => SslMode::VerifyFull,
            (Some(mode), RootCert::System) if mode != SslMode::VerifyFull => {
                return Err(TlsError::WeakModeWithSystemRoots { mode });
            }
            (Some(mode), _) => mode,
            (None, _) => SslMode::Prefer,
        };
        let driver_url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((driver_url, TlsOptions { mode, root_cert }))
    }

    /// Connects with `config` (whose own TLS mode is replaced by this one's). Under `prefer`, as
    /// in libpq, a connection is tried again without TLS when the TLS handshake fails or the
    /// server refuses the encrypted session (a `hostnossl`-only rule).
    pub fn connect(&self, config: &postgres::Config) -> Result<Client, ConnectError> {
        let mut config = config.clone();
        config.ssl_mode(self.mode.driver_mode());
        let connector = TrackTls {
            inner: MakeRustlsConnect::new(self.client_config().map_err(ConnectError::Tls)?),
            handshake_started: Arc::new(AtomicBool::new(false)),
        };
        match config.connect(connector.clone()) {
            Ok(client) => Ok(client),
            Err(e)
                if self.mode == SslMode::Prefer
                    && (rustls_error(&e).is_some()
                        || (connector.handshake_started.load(Ordering::Relaxed)
                            && e.as_db_error().is_some())) =>
            {
                config.ssl_mode(DriverMode::Disable);
                match config.connect(connector) {
                    Ok(client) => Ok(client),
                    // The server takes only encrypted connections: why the encrypted one failed
                    // (a certificate, a password) is the error worth reporting.
                    Err(plain) if refused_for_no_encryption(&plain) => Err(self.classify(e)),
                    Err(plain) => Err(self.classify(plain)),
                }
            }
            Err(e) => Err(self.classify(e)),
        }
    }

    /// The rustls configuration for this mode: which certificates are trusted and whether the
    /// host name is checked.
    fn client_config(&self) -> Result<ClientConfig, TlsError> {
        // Chosen explicitly rather than through rustls' process-wide default, which panics when
        // a second provider is compiled in by some other dependency.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Verifier {
            roots: self.trust_anchors()?.map(Arc::new),
            check_name: self.mode == SslMode::VerifyFull,
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup {
                message: e.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // What libpq 17 sends; PostgreSQL 17 requires it for `sslnegotiation=direct`.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    /// The CA certificates to check the server's against, or `None` to accept any certificate
    /// (encryption without authentication: `prefer` and `require` without a root certificate).
    fn trust_anchors(&self) -> Result<Option<RootCertStore>, TlsError> {
        let verifying = self.mode >= SslMode::VerifyCa;
        match &self.root_cert {
            _ if self.mode == SslMode::Disable => Ok(None),
            RootCert::System => system_roots().map(Some),
            // Stricter than libpq, which ignores a named file that is missing unless the mode is
            // verify-*: a mistyped path must not silently turn verification off.
            RootCert::File(path) if path.exists() => load_roots(path).map(Some),
            RootCert::File(path) if verifying => Err(TlsError::RootCertMissing {
                mode: self.mode,
                path: path.display().to_string(),
            }),
            RootCert::File(path) => Err(TlsError::NamedRootCertMissing {
                path: path.display().to_string(),
            }),
            // libpq: an existing ~/.postgresql/root.crt makes prefer and require verify the
            // chain too (as verify-ca); only verify-* insist on it.
            RootCert::Default => match default_root_cert() {
                Some(path) if path.exists() => load_roots(&path).map(Some),
                _ if verifying => Err(TlsError::RootCertMissing {
                    mode: self.mode,
                    path: self.root_cert.to_string(),
                }),
                _ => Ok(None),
            },
        }
    }

    /// Names a TLS failure in words that say what to change; other errors stay the driver's.
    fn classify(&self, e: postgres::Error) -> ConnectError {
        let roots = self.root_cert.to_string();
        if let Some(error) = rustls_error(&e) {
            let reason = error.to_string();
            return ConnectError::Tls(match error {
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                }) => TlsError::HostMismatch {
                    expected: server_name(expected),
                    presented: host_names(presented),
                },
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                    TlsError::HostMismatch {
                        expected: "this host name".to_string(),
                        presented: "other names".to_string(),
                    }
                }
                rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => TlsError::UnknownCa {
                    mode: self.mode,
                    roots,
                    unverified: self.without_verification(),
                },
                rustls::Error::InvalidCertificate(_) => TlsError::CertificateRefused {
                    mode: self.mode,
                    roots,
                    reason,
                },
                _ => TlsError::Handshake {
                    mode: self.mode,
                    reason,
                },
            });
        }
        // The driver's own words when the server answers the TLS request with "no".
        let no_server_tls = e
            .source()
            .is_some_and(|s| s.to_string() == "server does not support TLS");
        if no_server_tls {
            return ConnectError::Tls(TlsError::NoServerTls { mode: self.mode });
        }
        match e.as_db_error() {
            Some(db) if self.mode == SslMode::Disable && refused_for_no_encryption(&e) => {
                ConnectError::Tls(TlsError::EncryptionRequired {
                    server_message: db.message().to_string(),
                })
            }
            _ => ConnectError::Driver(e),
        }
    }
}

impl TlsOptions {
    /// What to change to encrypt without verifying: the mode, unless the mode is already one
    /// that verifies only because a root certificate is there (libpq's `require` and `prefer`).
    fn without_verification(&self) -> String {
        match &self.root_cert {
            _ if self.mode >= SslMode::VerifyCa => "use sslmode=require".to_string(),
            RootCert::Default => format!("remove {}", self.root_cert),
            RootCert::File(_) | RootCert::System => "leave sslrootcert out".to_string(),
        }
    }
}

/// The rustls connector, noting whether a TLS handshake began (the server answered the TLS
/// request with yes), which decides whether `prefer` may retry without TLS.
#[derive(Clone)]
struct TrackTls {
    inner: MakeRustlsConnect,
    handshake_started: Arc<AtomicBool>,
}

impl<S> MakeTlsConnect<S> for TrackTls
where
    MakeRustlsConnect: MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = TrackConnect<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        Ok(TrackConnect {
            inner: self.inner.make_tls_connect(domain)?,
            handshake_started: Arc::clone(&self.handshake_started),
        })
    }
}

struct TrackConnect<T> {
    inner: T,
    handshake_started: Arc<AtomicBool>,
}

impl<S, T: TlsConnect<S>> TlsConnect<S> for TrackConnect<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(self, stream: S) -> Self::Future {
        self.handshake_started.store(true, Ordering::Relaxed);
        self.inner.connect(stream)
    }
}

/// Whether pg_hba.conf has only `hostssl` lines for this unencrypted client: the server says so
/// as "no pg_hba.conf entry for host …, no encryption".
fn refused_for_no_encryption(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        db.code() == &postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && db.message().contains("no encryption")
    })
}

/// Splits `scheme://…?query` where the driver does: its credentials run to the first `@`, so a
/// `?` in a password is not the start of the query.
fn split_query(url: &str) -> (&str, Option<&str>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let after_credentials = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |at| after_scheme + at + 1);
    match url[after_credentials..].find('?') {
        Some(q) => {
            let q = after_credentials + q;
            (&url[..q], Some(&url[q + 1..]))
        }
        None => (url, None),
    }
}

fn default_root_cert() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(".postgresql").join("root.crt"))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| TlsError::RootCertUnreadable {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    let mut refused = None;
    // Certificates only: libpq also accepts CRLs in this file, which are skipped here.
    for cert in CertificateDer::pem_slice_iter(&pem) {
        match cert
            .map_err(|e| e.to_string())
            .and_then(|c| roots.add(c).map_err(|e| e.to_string()))
        {
            Ok(()) => {}
            Err(e) => refused = Some(e),
        }
    }
    if roots.is_empty() {
        return Err(TlsError::RootCertEmpty {
            path: shown,
            detail: refused.map(|e| format!(": {e}")).unwrap_or_default(),
        });
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let message = match found.errors.first() {
            Some(e) => e.to_string(),
            None => "none found".to_string(),
        };
        return Err(TlsError::NoSystemRoots { message });
    }
    Ok(roots)
}

/// The rustls error behind a failed connection, if the failure was the TLS handshake's.
fn rustls_error(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // tokio-rustls reports through `io::Error`, which keeps the rustls error inside.
        if let Some(tls) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        source = s.source();
    }
    None
}

/// The host names of a certificate's subject alternative names, from webpki's debug notation
/// (`DnsName("localhost")`, `IpAddress(127.0.0.1)`). Names of other kinds are not host names.
fn host_names(presented: &[String]) -> String {
    let names: Vec<&str> = presented
        .iter()
        .filter_map(|name| {
            name.strip_prefix("DnsName(\"")
                .and_then(|n| n.strip_suffix("\")"))
                .or_else(|| {
                    name.strip_prefix("IpAddress(")
                        .and_then(|n| n.strip_suffix(')'))
                })
        })
        .collect();
    if names.is_empty() {
        // webpki (unlike libpq) never falls back to the subject's common name.
        "no host name in its subject alternative names".to_string()
    } else {
        names.join(", ")
    }
}

fn server_name(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// The certificate check of every mode: with no trust anchors any certificate is accepted (the
/// connection is encrypted, not authenticated); with them the chain must lead to one, and under
/// `verify-full` the certificate must also name the host. The handshake's signatures are checked
/// in every case, so the server must hold the key of the certificate it shows.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> Result<(String, TlsOptions), TlsError> {
        TlsOptions::split_url(url)
    }

    #[test]
    fn ssl_parameters_leave_the_url_and_others_stay() {
        let (driver, tls) = split(
            "postgres://u:pw@db.example.org:5433/habitat?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .expect("valid");
        assert_eq!(
            driver,
            "postgres://u:pw@db.example.org:5433/habitat?application_name=x"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, RootCert::File(PathBuf::from("/etc/ca.pem")));

        let (driver, tls) = split("postgres://u@h/db?sslmode=require").expect("valid");
        assert_eq!(driver, "postgres://u@h/db");
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.root_cert, RootCert::Default);
    }

    #[test]
    fn libpq_defaults() {
        let (driver, tls) = split("postgres://u@h/db").expect("valid");
        assert_eq!(driver, "postgres://u@h/db");
        assert_eq!(tls.mode, SslMode::Prefer);
        let (_, tls) = split("postgresql://u@h/db?sslrootcert=system").expect("valid");
        assert_eq!(
            (tls.mode, tls.root_cert),
            (SslMode::VerifyFull, RootCert::System)
        );
        assert!(matches!(
            split("postgres://u@h/db?sslrootcert=system&sslmode=require"),
            Err(TlsError::WeakModeWithSystemRoots {
                mode: SslMode::Require
            })
        ));
        let (_, tls) = split("postgres://u@h/db?sslmode=disable&sslmode=verify-ca").expect("valid");
        assert_eq!(tls.mode, SslMode::VerifyCa);
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        let (driver, tls) =
            split("postgres://hm:p?a&sslmode=x@h/db?sslmode=require").expect("valid");
        assert_eq!(driver, "postgres://hm:p?a&sslmode=x@h/db");
        assert_eq!(tls.mode, SslMode::Require);
    }

    #[test]
    fn certificate_names_read_as_host_names() {
        let presented = [
            r#"DnsName("localhost")"#.to_string(),
            "IpAddress(127.0.0.1)".to_string(),
            "DirectoryName".to_string(),
        ];
        assert_eq!(host_names(&presented), "localhost, 127.0.0.1");
        assert_eq!(
            host_names(&[]),
            "no host name in its subject alternative names"
        );
    }

    #[test]
    fn unknown_modes_name_the_choices() {
        let e = split("postgres://u:hunter2@h/db?sslmode=verify_full").err();
        let message = e.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            message,
            "sslmode=verify_full is not a mode: use disable, prefer, require, verify-ca or verify-full"
        );
    }

    #[test]
    fn a_named_root_certificate_must_exist() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nope.crt");
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            let url = format!(
                "postgres://u@h/db?sslmode={mode}&sslrootcert={}",
                missing.display()
            );
            let (_, tls) = split(&url).expect("valid");
            let e = tls.client_config().err().map(|e| e.to_string());
            let e = e.unwrap_or_default();
            assert!(
                e.contains("nope.crt") && e.contains("does not exist"),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_root_certificate_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("empty.crt");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let tls = TlsOptions {
            mode: SslMode::VerifyCa,
            root_cert: RootCert::File(path),
        };
        let e = tls.client_config().err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("holds no usable PEM certificate")),
            "{e:?}"
        );
    }

    #[test]
    fn disable_and_unverified_modes_need_no_certificate() {
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require] {
            let tls = TlsOptions {
                mode,
                root_cert: RootCert::Default,
            };
            // A home without ~/.postgresql/root.crt is the normal case; only verify-* insist.
            if default_root_cert().is_none_or(|p| !p.exists()) {
                assert!(tls.client_config().is_ok(), "{mode}");
            }
        }
    }
}
