//! TLS to PostgreSQL (`sslmode`, `sslrootcert`), against throwaway clusters of the tests' own.
//!
//! Each test starts a PostgreSQL cluster in a temporary directory — with `ssl = on` and a server
//! certificate for `localhost` only, signed by a CA the test makes, or with `ssl = off` — and
//! drives the real binary against it. Connecting to `127.0.0.1` therefore presents a certificate
//! that does not name the host. Without PostgreSQL's server binaries (see `common::pg_bindir`) the
//! tests that need them are listed as ignored (skipped), except under `CI=true`, where they fail.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use crate::harness::{Test, tests};
use habitat_migrate::store::DbUrl;
use habitat_migrate::store::postgres::PgStore;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        PostgresBinaries: [
            require_encrypts_without_verifying_the_certificate,
            verify_full_with_the_right_ca_connects,
            verify_full_refuses_a_host_the_certificate_does_not_name,
            an_unknown_ca_is_refused,
            disable_is_refused_where_only_encrypted_connections_are_allowed,
            prefer_uses_tls_when_the_server_offers_it,
            prefer_connects_without_tls_to_a_server_without_ssl,
        ],
        Nothing: [
            unusable_tls_settings_are_refused_before_connecting,
        ],
    }
}

/// The password every URL carries; the servers trust loopback, so it is never checked, only
/// looked for in the output.
const PASSWORD: &str = "hunter2-secret";

/// A CA certificate (PEM) and the issuer that signs with its key.
fn make_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A server certificate for `localhost` only, and its key (both PEM).
fn make_server_cert(issuer: &Issuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, issuer).expect("server certificate");
    (cert.pem(), key.serialize_pem())
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A free TCP port on loopback (free when asked; the cluster takes it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running throwaway cluster, stopped and deleted on drop.
struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing this server shows.
    other_ca: PathBuf,
}

impl Cluster {
    /// Starts a cluster (`ssl` on or off). Panics without PostgreSQL's server binaries: the
    /// harness lists these tests as ignored then, except under `CI=true`.
    fn start(ssl: bool) -> Cluster {
        let bindir = common::pg_bindir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server binaries are missing: no /usr/lib/postgresql/*/bin/initdb (set HM_TEST_PG_BINDIR)"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("hm-tls-")
            .tempdir()
            .expect("temp dir");
        let (ca_pem, issuer) = make_ca("habitat-migrate test CA");
        let (other_pem, _) = make_ca("some other CA");
        let ca = dir.path().join("ca.crt");
        let other_ca = dir.path().join("other-ca.crt");
        fs::write(&ca, ca_pem).expect("write CA");
        fs::write(&other_ca, other_pem).expect("write other CA");
        let home = dir.path().join("home");
        fs::create_dir(&home).expect("home dir");

        let data = dir.path().join("data");
        let mut cluster = Cluster {
            dir,
            bindir,
            port: 0,
            ca,
            other_ca,
        };
        // initdb refuses root; the cluster's files then belong to `postgres`.
        if running_as_root() {
            cluster.sh("chown", &["-R", "postgres:postgres", &cluster.path_str()]);
        }
        let initdb = cluster.bindir.join("initdb");
        cluster.as_server(
            &initdb,
            &[
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
                "--locale=C",
                "-E",
                "UTF8",
            ],
        );
        let (cert, key) = make_server_cert(&issuer);
        fs::write(data.join("server.crt"), cert).expect("server.crt");
        fs::write(data.join("server.key"), key).expect("server.key");
        fs::set_permissions(data.join("server.key"), fs::Permissions::from_mode(0o600))
            .expect("key mode");
        let mut conf = fs::read_to_string(data.join("postgresql.conf")).expect("read conf");
        conf.push_str(&format!(
            "\nlisten_addresses = 'localhost'\nunix_socket_directories = '{}'\nssl = {}\n\
             ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nlog_connections = on\n\
             fsync = off\n",
            cluster.path_str(),
            if ssl { "on" } else { "off" }
        ));
        fs::write(data.join("postgresql.conf"), conf).expect("write conf");
        // With ssl: encrypted connections only, except that database `plain` takes both and
        // database `nossl` only unencrypted ones. Without ssl: plain connections everywhere.
        let hba = if ssl {
            "local all all trust\n\
             hostssl nossl all 127.0.0.1/32 reject\nhostssl nossl all ::1/128 reject\n\
             host nossl all 127.0.0.1/32 trust\nhost nossl all ::1/128 trust\n\
             hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n\
             host plain all 127.0.0.1/32 trust\nhost plain all ::1/128 trust\n"
        } else {
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        };
        fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        if running_as_root() {
            cluster.sh("chown", &["-R", "postgres:postgres", &cluster.path_str()]);
        }
        let pg_ctl = cluster.bindir.join("pg_ctl");
        let log = cluster.dir.path().join("server.log").display().to_string();
        // A port free a moment ago may be taken by now: try a few.
        for _ in 0..3 {
            cluster.port = free_port();
            let started = cluster.run_as_server(
                &pg_ctl,
                &[
                    "-D",
                    &data.display().to_string(),
                    "-o",
                    &format!("-p {}", cluster.port),
                    "-l",
                    &log,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            );
            if started.status.success() {
                cluster.create_database("plain");
                cluster.create_database("nossl");
                return cluster;
            }
        }
        panic!("the test cluster did not start:\n{}", cluster.server_log());
    }

    fn path_str(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// A home directory for the binary, so that a developer's own `~/.postgresql/root.crt`
    /// cannot change what a test sees.
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A home whose `~/.postgresql/root.crt` is `ca`.
    fn home_with_root_cert(&self, ca: &Path) -> PathBuf {
        let home = self.dir.path().join(format!(
            "home-{}",
            ca.file_stem().and_then(|s| s.to_str()).unwrap_or("ca")
        ));
        fs::create_dir_all(home.join(".postgresql")).expect("~/.postgresql");
        fs::copy(ca, home.join(".postgresql/root.crt")).expect("root.crt");
        home
    }

    fn sh(&self, program: &str, args: &[&str]) {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} did not run: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn run_as_server(&self, program: &Path, args: &[&str]) -> Output {
        let mut cmd = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{} did not run: {e}", program.display()))
    }

    fn as_server(&self, program: &Path, args: &[&str]) {
        let out = self.run_as_server(program, args);
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A superuser connection over the cluster's Unix socket (no TLS involved).
    fn admin(&self) -> postgres::Client {
        let mut config = postgres::Config::new();
        config
            .host_path(self.dir.path())
            .port(self.port)
            .user("postgres")
            .dbname("postgres");
        config.connect(postgres::NoTls).expect("admin connection")
    }

    /// A URL with a password, to database `db` at `host`, with `params` as its query.
    fn url(&self, host: &str, db: &str, params: &str) -> String {
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/{db}{query}",
            self.port
        )
    }

    /// Runs the binary with `--database-url url`, in the cluster's directory, with `home`.
    fn habitat_migrate(&self, url: &str, home: &Path, args: &[&str]) -> Output {
        let out = common::bin()
            .current_dir(self.dir.path())
            .env("HOME", home)
            .arg("--database-url")
            .arg(url)
            .args(args)
            .output()
            .expect("habitat-migrate runs");
        let all = common::all_output(&out);
        assert!(!all.contains(PASSWORD), "the password was shown:\n{all}");
        out
    }

    fn server_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Whether the server logged a TCP session to database `db`, and whether every one was
    /// encrypted (`log_connections` says "SSL enabled" on the line that authorises a session).
    fn sessions_to(&self, db: &str) -> Vec<bool> {
        self.server_log()
            .lines()
            .filter(|l| {
                l.contains("connection authorized:")
                    && l.split_whitespace().any(|w| w == format!("database={db}"))
            })
            .map(|l| l.contains("SSL enabled"))
            .collect()
    }

    fn create_database(&self, db: &str) {
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {db}: {e:?}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = self.bindir.join("pg_ctl");
        let data = self.dir.path().join("data").display().to_string();
        let out = self.run_as_server(&pg_ctl, &["-D", &data, "-m", "immediate", "-w", "stop"]);
        if !out.status.success() {
            eprintln!(
                "warning: could not stop the test cluster in {}: {}",
                self.path_str(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Exit code 3 and exactly one line, `error: …`, on standard error; returns that line.
fn one_line_failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "exit code; stderr:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let line = stderr.trim_end_matches('\n');
    assert!(!line.contains('\n'), "more than one line:\n{stderr}");
    assert!(line.starts_with("error: "), "{stderr}");
    line.to_string()
}

fn assert_success(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", common::all_output(out));
}

fn require_encrypts_without_verifying_the_certificate() {
    let pg = Cluster::start(true);
    pg.create_database("req");
    // 127.0.0.1 is not a name the certificate lists, and no CA is given: require does not care.
    let url = pg.url("127.0.0.1", "req", "sslmode=require");
    assert_success(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
    assert_eq!(pg.sessions_to("req"), [true], "{}", pg.server_log());

    let db_url = DbUrl::parse(&url).expect("URL");
    let mut store = PgStore::connect(&db_url).expect("connect with sslmode=require");
    let ssl: bool = store
        .client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(ssl, "the session is not encrypted");
    let tables: i64 = store
        .client()
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'members'",
            &[],
        )
        .expect("schema")
        .get(0);
    assert_eq!(tables, 1, "db init created the schema");

    // With a root certificate, require checks the chain as verify-ca does (libpq), whether the
    // file is named or is ~/.postgresql/root.crt.
    let named = pg.url(
        "127.0.0.1",
        "req",
        &format!("sslmode=require&sslrootcert={}", pg.ca.display()),
    );
    assert_success(&pg.habitat_migrate(&named, &pg.home(), &["db", "status"]));
    let home = pg.home_with_root_cert(&pg.other_ca);
    let line = one_line_failure(&pg.habitat_migrate(&url, &home, &["db", "status"]));
    assert_eq!(
        line,
        format!(
            "error: cannot connect to postgres://postgres:***@127.0.0.1:{}/req?sslmode=require: the server's certificate is not signed by a CA in {}/.postgresql/root.crt (sslmode=require): set sslrootcert= to the certificate of the CA that signed the server's, or remove {}/.postgresql/root.crt to encrypt without verifying the server",
            pg.port,
            home.display(),
            home.display()
        )
    );
    let named = pg.url(
        "127.0.0.1",
        "req",
        &format!("sslmode=require&sslrootcert={}", pg.other_ca.display()),
    );
    let line = one_line_failure(&pg.habitat_migrate(&named, &pg.home(), &["db", "status"]));
    assert!(
        line.ends_with(&format!(
            "not signed by a CA in {} (sslmode=require): set sslrootcert= to the certificate of the CA that signed the server's, or leave sslrootcert out to encrypt without verifying the server",
            pg.other_ca.display()
        )),
        "{line}"
    );
}

fn verify_full_with_the_right_ca_connects() {
    let pg = Cluster::start(true);
    pg.create_database("vfull");
    let url = pg.url(
        "localhost",
        "vfull",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca.display()),
    );
    assert_success(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
    assert_eq!(pg.sessions_to("vfull"), [true], "{}", pg.server_log());

    // verify-ca checks the chain only, so the address the certificate does not name is fine.
    let ca_only = pg.url(
        "127.0.0.1",
        "vfull",
        &format!("sslmode=verify-ca&sslrootcert={}", pg.ca.display()),
    );
    assert_success(&pg.habitat_migrate(&ca_only, &pg.home(), &["db", "status"]));

    // Without sslrootcert, ~/.postgresql/root.crt is the CA file.
    let default_ca = pg.url("localhost", "vfull", "sslmode=verify-full");
    let home = pg.home_with_root_cert(&pg.ca);
    assert_success(&pg.habitat_migrate(&default_ca, &home, &["db", "status"]));
    // … and verify-full without one says where it looked and what to do instead.
    let line = one_line_failure(&pg.habitat_migrate(&default_ca, &pg.home(), &["db", "status"]));
    assert_eq!(
        line,
        format!(
            "error: cannot connect to postgres://postgres:***@localhost:{}/vfull?sslmode=verify-full: sslmode=verify-full verifies the server's certificate, but the root certificate file {}/.postgresql/root.crt does not exist: give the CA's certificate with sslrootcert=FILE, use the system's trusted roots with sslrootcert=system, or use sslmode=require to encrypt without verifying the server",
            pg.port,
            pg.home().display()
        )
    );
    assert_eq!(pg.sessions_to("vfull").len(), 3, "{}", pg.server_log());
}

fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    let pg = Cluster::start(true);
    let params = format!("sslmode=verify-full&sslrootcert={}", pg.ca.display());
    let url = pg.url("127.0.0.1", "postgres", &params);
    let line = one_line_failure(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
    assert_eq!(
        line,
        format!(
            "error: cannot connect to postgres://postgres:***@127.0.0.1:{}/postgres?{params}: the server's certificate is for localhost, not for 127.0.0.1, and sslmode=verify-full checks the host name: connect to a name the certificate lists, or use sslmode=verify-ca to check only the CA",
            pg.port
        )
    );
}

fn an_unknown_ca_is_refused() {
    let pg = Cluster::start(true);
    for (mode, host) in [("verify-ca", "127.0.0.1"), ("verify-full", "localhost")] {
        let params = format!("sslmode={mode}&sslrootcert={}", pg.other_ca.display());
        let url = pg.url(host, "postgres", &params);
        let line = one_line_failure(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
        assert_eq!(
            line,
            format!(
                "error: cannot connect to postgres://postgres:***@{host}:{}/postgres?{params}: the server's certificate is not signed by a CA in {} (sslmode={mode}): set sslrootcert= to the certificate of the CA that signed the server's, or use sslmode=require to encrypt without verifying the server",
                pg.port,
                pg.other_ca.display()
            )
        );
    }
    // The JSON report carries the same one line.
    let url = pg.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={}", pg.other_ca.display()),
    );
    let out = pg.habitat_migrate(&url, &pg.home(), &["--format", "json", "db", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["exit_code"], 3);
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("not signed by a CA in") && !e.contains('\n')),
        "{report}"
    );
}

fn disable_is_refused_where_only_encrypted_connections_are_allowed() {
    let pg = Cluster::start(true);
    let url = pg.url("127.0.0.1", "postgres", "sslmode=disable");
    let line = one_line_failure(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
    assert_eq!(
        line,
        format!(
            "error: cannot connect to postgres://postgres:***@127.0.0.1:{}/postgres?sslmode=disable: no pg_hba.conf entry for host \"127.0.0.1\", user \"postgres\", database \"postgres\", no encryption (sslmode=disable): this server accepts only encrypted connections here; use sslmode=require or stronger",
            pg.port
        )
    );
    // Where plain connections are allowed, disable connects without TLS.
    let plain = pg.url("127.0.0.1", "plain", "sslmode=disable");
    assert_success(&pg.habitat_migrate(&plain, &pg.home(), &["db", "init"]));
    assert_eq!(pg.sessions_to("plain"), [false], "{}", pg.server_log());
}

fn prefer_uses_tls_when_the_server_offers_it() {
    let pg = Cluster::start(true);
    pg.create_database("pref");
    // prefer, named and as the default, over a hostssl-only rule.
    for params in ["sslmode=prefer", ""] {
        let url = pg.url("127.0.0.1", "pref", params);
        assert_success(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
    }
    assert_eq!(pg.sessions_to("pref"), [true, true], "{}", pg.server_log());

    // A server that refuses the encrypted session (a hostnossl-only rule) gets a plain one.
    let url = pg.url("127.0.0.1", "nossl", "sslmode=prefer");
    assert_success(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
    assert_eq!(pg.sessions_to("nossl"), [false], "{}", pg.server_log());

    // A handshake that fails (here: ~/.postgresql/root.crt is some other CA, so the chain is
    // checked and refused) is retried without TLS, as libpq does …
    let home = pg.home_with_root_cert(&pg.other_ca);
    let url = pg.url("127.0.0.1", "plain", "sslmode=prefer");
    assert_success(&pg.habitat_migrate(&url, &home, &["db", "init"]));
    assert_eq!(pg.sessions_to("plain"), [false], "{}", pg.server_log());
    // … and where the server takes only encrypted connections, the certificate is the error.
    let url = pg.url("127.0.0.1", "pref", "sslmode=prefer");
    let line = one_line_failure(&pg.habitat_migrate(&url, &home, &["db", "status"]));
    let root_crt = home.join(".postgresql/root.crt");
    assert_eq!(
        line,
        format!(
            "error: cannot connect to postgres://postgres:***@127.0.0.1:{}/pref?sslmode=prefer: the server's certificate is not signed by a CA in {} (sslmode=prefer): set sslrootcert= to the certificate of the CA that signed the server's, or remove {} to encrypt without verifying the server",
            pg.port,
            root_crt.display(),
            root_crt.display()
        )
    );
}

fn prefer_connects_without_tls_to_a_server_without_ssl() {
    let pg = Cluster::start(false);
    for params in ["sslmode=prefer", ""] {
        let url = pg.url("127.0.0.1", "nossl", params);
        assert_success(&pg.habitat_migrate(&url, &pg.home(), &["db", "init"]));
    }
    assert_eq!(
        pg.sessions_to("nossl"),
        [false, false],
        "{}",
        pg.server_log()
    );

    let url = pg.url("127.0.0.1", "nossl", "sslmode=require");
    let line = one_line_failure(&pg.habitat_migrate(&url, &pg.home(), &["db", "status"]));
    assert_eq!(
        line,
        format!(
            "error: cannot connect to postgres://postgres:***@127.0.0.1:{}/nossl?sslmode=require: the server does not accept TLS connections (sslmode=require): turn on ssl in the server's postgresql.conf, or use sslmode=prefer to connect without encryption",
            pg.port
        )
    );
}

fn unusable_tls_settings_are_refused_before_connecting() {
    // No server needed: these fail while the settings are read.
    let cases = [
        (
            "postgres://postgres:hunter2-secret@127.0.0.1:1/db?sslmode=verify_full",
            "sslmode=verify_full is not a mode: use disable, prefer, require, verify-ca or verify-full",
        ),
        (
            "postgres://postgres:hunter2-secret@127.0.0.1:1/db?sslmode=require&sslrootcert=system",
            "sslmode=require cannot be used with sslrootcert=system, which only makes sense with a host name check: use sslmode=verify-full",
        ),
        (
            "postgres://postgres:hunter2-secret@127.0.0.1:1/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.crt",
            "sslmode=verify-ca verifies the server's certificate, but the root certificate file /nonexistent/ca.crt does not exist: give the CA's certificate with sslrootcert=FILE, use the system's trusted roots with sslrootcert=system, or use sslmode=require to encrypt without verifying the server",
        ),
    ];
    let home = tempfile::tempdir().expect("home");
    for (url, message) in cases {
        let out = common::bin()
            .env("HOME", home.path())
            .args(["--database-url", url, "db", "status"])
            .output()
            .expect("habitat-migrate runs");
        assert!(!common::all_output(&out).contains(PASSWORD));
        let redacted = url.replace(PASSWORD, "***");
        assert_eq!(
            one_line_failure(&out),
            format!("error: cannot connect to {redacted}: {message}")
        );
    }
}
