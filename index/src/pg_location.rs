//! A PostgreSQL location, parsed once: what the client connects with and
//! what messages show come from the same split of the text, so the part
//! hidden from messages is exactly the part used as the password.
//!
//! A location is a `postgresql://` (or `postgres://`) URI, split as
//! tokio-postgres splits it (libpq's own URI grammar, loosely): the user
//! information runs to the **first** `@` (a `/` or `?` in the password does
//! not end it), the user name to the first `:` in it, the rest is the
//! password; then the hosts (to `/` or `?`), the database, and `key=value`
//! parameters separated by `&`. The TLS parameters libpq has and
//! tokio-postgres lacks (`sslmode=verify-ca|verify-full`, `sslrootcert`,
//! `sslcert`, `sslkey`) are taken out here; the rest is handed to
//! tokio-postgres's parser unchanged. `PGPASSWORD` is used when the location
//! has no password, as libpq does.
//!
//! TLS (OpenSSL), with libpq's meaning of `sslmode`:
//!
//! | `sslmode` | TLS | checks |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default) | when the server offers it, else plain | none |
//! | `require` | always | none; the chain when `sslrootcert` is given (as libpq) |
//! | `verify-ca` | always | the chain, to `sslrootcert` |
//! | `verify-full` | always | the chain and the host name (or IP) |
//!
//! A Unix-socket host never uses TLS (the server refuses it there): use
//! `require` and stronger with a TCP host.

use std::path::{Path, PathBuf};

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::Client;
use postgres_openssl::MakeTlsConnector;

use super::IndexError;

/// How much TLS a connection asks for (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, unverified; plain otherwise.
    #[default]
    Prefer,
    /// TLS or no connection; the server's certificate is not checked
    /// (unless a root certificate is given: then as [`SslMode::VerifyCa`]).
    Require,
    /// TLS, the server's certificate chain checked against the root certificate.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// The TLS settings of a location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: the CA certificates (PEM) the server's chain must end
    /// in; `system` for the system's store.
    pub root_cert: Option<PathBuf>,
    /// `sslcert`: a client certificate (PEM), with `sslkey`.
    pub cert: Option<PathBuf>,
    /// `sslkey`: the client certificate's private key (PEM).
    pub key: Option<PathBuf>,
}

/// A parsed PostgreSQL location: the client's configuration, its TLS
/// settings and the text to show for it (password removed).
#[derive(Clone)]
pub struct PgLocation {
    config: postgres::Config,
    tls: TlsSettings,
    shown: String,
}

impl std::fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the shown text: the configuration holds the password.
        f.debug_struct("PgLocation")
            .field("location", &self.shown)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The parts of a `postgresql://` URI, as tokio-postgres splits them
/// (slices of the text, not decoded).
struct UriParts<'a> {
    scheme: &'a str,
    /// The user name, when there is user information.
    user: Option<&'a str>,
    /// Whether the user information has a `:` (a password, maybe empty).
    has_colon: bool,
    /// Whether that password is not empty.
    has_password: bool,
    /// Everything after the user information: hosts, path, parameters.
    rest: &'a str,
}

fn split_uri(location: &str) -> Option<UriParts<'_>> {
    let (scheme, after) = ["postgresql://", "postgres://"]
        .iter()
        .find_map(|p| location.strip_prefix(p).map(|r| (&p[..p.len() - 3], r)))?;
    // tokio-postgres: the credentials run to the first `@` of the whole rest.
    Some(match after.split_once('@') {
        Some((creds, rest)) => {
            let (user, colon, password) = match creds.split_once(':') {
                Some((user, password)) => (user, true, !password.is_empty()),
                None => (creds, false, false),
            };
            UriParts {
                scheme,
                user: Some(user),
                has_colon: colon,
                has_password: password,
                rest,
            }
        }
        None => UriParts {
            scheme,
            user: None,
            has_colon: false,
            has_password: false,
            rest: after,
        },
    })
}

/// Splits `rest` (after the user information) into the host-and-path part
/// and its parameters (`key`, `value`, both raw), as tokio-postgres does:
/// parameters after the first `?`, split at `&`, a key to its first `=`.
fn split_params(rest: &str) -> (&str, Vec<(&str, Option<&str>)>) {
    let Some((head, query)) = rest.split_once('?') else {
        return (rest, Vec::new());
    };
    let params = if query.is_empty() {
        Vec::new()
    } else {
        query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            })
            .collect()
    };
    (head, params)
}

/// Percent-decoding, as the URI parser decodes keys and values.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True for a parameter key whose value must never be shown: `password`
/// (any case, as a careless spelling may still be meant as one) and any
/// other key naming a password (`sslpassword`).
fn is_secret_key(raw_key: &str) -> bool {
    percent_decode(raw_key)
        .trim()
        .to_ascii_lowercase()
        .contains("password")
}

/// `key=value&...` with secret values as `***`.
fn shown_params(params: &[(&str, Option<&str>)]) -> String {
    params
        .iter()
        .map(|(k, v)| match v {
            Some(_) if is_secret_key(k) => format!("{k}=***"),
            Some(v) => format!("{k}={v}"),
            None => (*k).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The URI with its password removed, from the same split that connects.
fn shown_uri(parts: &UriParts<'_>) -> String {
    let mut shown = format!("{}://", parts.scheme);
    // A second `@` means a password with an unencoded `@` (the client takes
    // the password to the first one; what follows up to the last `@` was
    // meant as password too): nothing up to the last `@` is shown.
    let rest = match parts.rest.rsplit_once('@') {
        Some((_, after)) => {
            shown.push_str(parts.user.unwrap_or(""));
            shown.push_str(":***@");
            after
        }
        None => {
            if let Some(user) = parts.user {
                shown.push_str(user);
                if parts.has_password {
                    shown.push_str(":***");
                } else if parts.has_colon {
                    shown.push(':');
                }
                shown.push('@');
            }
            parts.rest
        }
    };
    let (head, params) = split_params(rest);
    shown.push_str(head);
    if rest.contains('?') {
        shown.push('?');
        shown.push_str(&shown_params(&params));
    }
    shown
}

/// One `key=value` of a libpq connection string: the key, and the value's
/// byte range in the text.
struct ConninfoPair<'a> {
    key: &'a str,
    value: std::ops::Range<usize>,
}

/// Splits a libpq `key=value` connection string as tokio-postgres (and
/// libpq) does: white space between pairs, values quoted with `'` or bare,
/// `\` escaping the next character. None when the text is not one.
fn split_conninfo(text: &str) -> Option<Vec<ConninfoPair<'_>>> {
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| bytes.get(i).map(|&(_, c)| c);
    let offset = |i: usize| bytes.get(i).map_or(text.len(), |&(o, _)| o);
    let mut pairs = Vec::new();
    let mut i = 0;
    loop {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if at(i).is_none() {
            break;
        }
        let key_start = i;
        while at(i).is_some_and(|c| !c.is_whitespace() && c != '=') {
            i += 1;
        }
        let key = &text[offset(key_start)..offset(i)];
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if key.is_empty() || at(i) != Some('=') {
            return None;
        }
        i += 1;
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let value_start = i;
        if at(i) == Some('\'') {
            i += 1;
            loop {
                match at(i) {
                    // Unterminated: the value runs to the end (and is not a
                    // valid string, but it is hidden all the same).
                    None => break,
                    Some('\\') => i += 2,
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        } else {
            while let Some(c) = at(i) {
                if c.is_whitespace() {
                    break;
                }
                i += if c == '\\' { 2 } else { 1 };
            }
        }
        let end = offset(i.min(bytes.len()));
        pairs.push(ConninfoPair {
            key,
            value: offset(value_start)..end,
        });
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// A location that is not a PostgreSQL URI, with any password removed: a
/// libpq `key=value` string (refused as a location, but shown in the
/// refusal), another scheme's URI, or a file path (shown as it is).
fn shown_other(location: &str) -> String {
    if let Some((scheme, after)) = location.split_once("://") {
        // Another scheme: its user information is hidden whole.
        let rest = after.rsplit_once('@').map_or(after, |(_, r)| r);
        let hidden = if rest.len() < after.len() { "***@" } else { "" };
        let (head, params) = split_params(rest);
        let query = if rest.contains('?') {
            format!("?{}", shown_params(&params))
        } else {
            String::new()
        };
        return format!("{scheme}://{hidden}{head}{query}");
    }
    if let Some(pairs) = split_conninfo(location) {
        if pairs.iter().any(|p| is_secret_key(p.key)) {
            let mut shown = String::with_capacity(location.len());
            let mut from = 0;
            for p in pairs.iter().filter(|p| is_secret_key(p.key)) {
                shown.push_str(&location[from..p.value.start]);
                shown.push_str("***");
                from = p.value.end;
            }
            shown.push_str(&location[from..]);
            return shown;
        }
        return location.to_owned();
    }
    // Not a connection string (an unterminated quote, say), yet it sets a
    // password: nothing after its `=` is shown.
    let lower = location.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("password") {
        let after = from + at + "password".len();
        let rest = &location[after..];
        if rest.trim_start().starts_with('=') {
            let equals = after + (rest.len() - rest.trim_start().len()) + 1;
            return format!("{}***", &location[..equals]);
        }
        from = after;
    }
    location.to_owned()
}

/// The location with every password removed (see the module docs): the
/// text shown in messages, logs, reports and property reads.
pub fn redact(location: &str) -> String {
    match split_uri(location) {
        Some(parts) => shown_uri(&parts),
        None => shown_other(location),
    }
}

impl PgLocation {
    /// Parses a `postgresql://` URI (see the module docs).
    pub fn parse(location: &str) -> Result<Self, IndexError> {
        let shown = redact(location);
        let invalid = |reason: String| IndexError::InvalidLocation {
            location: shown.clone(),
            reason,
        };
        let parts = split_uri(location).ok_or_else(|| invalid("not a postgresql:// URI".into()))?;
        if parts.rest.contains('@') {
            return Err(invalid(
                "more than one '@': write an '@' in the user name or password as %40".into(),
            ));
        }
        let (head, params) = split_params(parts.rest);
        let mut tls = TlsSettings::default();
        let mut kept = Vec::new();
        for &(key, value) in &params {
            let decoded = percent_decode(key);
            let path = || value.map(|v| PathBuf::from(percent_decode(v)));
            match decoded.as_str() {
                "sslmode" => {
                    let value = percent_decode(value.unwrap_or(""));
                    tls.mode = SslMode::parse(&value).ok_or_else(|| {
                        invalid(format!(
                            "sslmode {value:?}: use disable, prefer, require, verify-ca or \
                             verify-full"
                        ))
                    })?;
                }
                "sslrootcert" => tls.root_cert = path(),
                "sslcert" => tls.cert = path(),
                "sslkey" => tls.key = path(),
                _ => kept.push(match value {
                    Some(v) => format!("{key}={v}"),
                    None => key.to_owned(),
                }),
            }
        }
        // What is left goes to tokio-postgres's parser as it was written.
        let mut client_uri = format!("{}://", parts.scheme);
        if let Some(creds) = location[client_uri.len()..]
            .split_once('@')
            .map(|(creds, _)| creds)
        {
            client_uri.push_str(creds);
            client_uri.push('@');
        }
        client_uri.push_str(head);
        if !kept.is_empty() {
            client_uri.push('?');
            client_uri.push_str(&kept.join("&"));
        }
        let mut config: postgres::Config = client_uri
            .parse()
            .map_err(|e: postgres::Error| invalid(e.to_string()))?;
        config.ssl_mode(match tls.mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        if config.get_password().is_none() {
            if let Some(password) = std::env::var_os("PGPASSWORD") {
                config.password(password.as_encoded_bytes());
            }
        }
        Ok(Self { config, tls, shown })
    }

    /// The location with its password removed.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The client's configuration (connect and statement settings may be
    /// added to it).
    pub fn config_mut(&mut self) -> &mut postgres::Config {
        &mut self.config
    }

    /// The client's configuration.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The TLS settings.
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// Connects, with TLS as `sslmode` asks. A TLS setting that cannot be
    /// used (a missing root certificate file) is an invalid location.
    pub fn connect(&self) -> Result<Client, ConnectError> {
        if self.tls.mode == SslMode::Disable {
            return Ok(self.config.connect(postgres::NoTls)?);
        }
        let connector = self.tls_connector()?;
        Ok(self.config.connect(connector)?)
    }

    fn tls_connector(&self) -> Result<MakeTlsConnector, ConnectError> {
        let tls = &self.tls;
        let setting = |what: &'static str, path: &Path, e: openssl::error::ErrorStack| {
            ConnectError::Tls(format!("{what} {}: cannot be used: {e}", path.display()))
        };
        let mut builder = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
        let root = match &tls.root_cert {
            Some(p) if p.as_os_str() == "system" => None,
            Some(p) => Some(p.clone()),
            None => default_root_cert().filter(|p| p.is_file()),
        };
        let verify = match tls.mode {
            SslMode::Disable | SslMode::Prefer => false,
            // libpq: `require` with a root certificate checks the chain.
            SslMode::Require => tls.root_cert.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                if tls.root_cert.is_none() && root.is_none() {
                    return Err(ConnectError::Tls(
                        "sslmode verify-ca and verify-full need the server's CA: add \
                         sslrootcert=FILE (PEM) or sslrootcert=system to the location"
                            .into(),
                    ));
                }
                true
            }
        };
        if let Some(root) = &root {
            if verify {
                if !root.is_file() {
                    return Err(ConnectError::Tls(format!(
                        "sslrootcert {}: no such file",
                        root.display()
                    )));
                }
                builder
                    .set_ca_file(root)
                    .map_err(|e| setting("sslrootcert", root, e))?;
            }
        }
        if let Some(cert) = &tls.cert {
            builder
                .set_certificate_chain_file(cert)
                .map_err(|e| setting("sslcert", cert, e))?;
            let key = tls.key.as_ref().ok_or_else(|| {
                ConnectError::Tls("sslcert needs its private key: add sslkey=FILE".into())
            })?;
            builder
                .set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| setting("sslkey", key, e))?;
        }
        builder.set_verify(if verify {
            SslVerifyMode::PEER
        } else {
            SslVerifyMode::NONE
        });
        let mut connector = MakeTlsConnector::new(builder.build());
        let check_host = tls.mode == SslMode::VerifyFull;
        connector.set_callback(move |config, _host| {
            config.set_verify_hostname(check_host);
            Ok(())
        });
        Ok(connector)
    }
}

/// libpq's default root certificate: `~/.postgresql/root.crt`.
fn default_root_cert() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".postgresql/root.crt"))
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TLS settings cannot be used (before any connection).
    #[error("TLS: {0}")]
    Tls(String),
    /// The client failed: connection, TLS handshake, authentication.
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_hidden_is_the_one_used() {
        for (location, password) in [
            ("postgresql://user:pa/ss@host/db", "pa/ss"),
            ("postgresql://user:pa?ss@host/db", "pa?ss"),
            ("postgresql://user:pa%40ss@host/db", "pa@ss"),
            (
                "postgres://user:pa%2Fss@host:5433/db?sslmode=disable",
                "pa/ss",
            ),
            ("postgresql://user@host/db?password=pa%26ss", "pa&ss"),
        ] {
            let parsed = PgLocation::parse(location).unwrap();
            assert_eq!(
                parsed.config().get_password(),
                Some(password.as_bytes()),
                "{location}"
            );
            let shown = parsed.shown();
            for part in ["pa/ss", "pa?ss", "pa%40ss", "pa@ss", "pa%2Fss", "pa%26ss"] {
                assert!(!shown.contains(part), "{location} shown as {shown}");
            }
            assert!(shown.contains("host"), "{shown}");
            let debug = format!("{parsed:?}");
            assert!(
                !debug.contains(password) && !debug.contains("pa%"),
                "{debug}"
            );
        }
        assert_eq!(
            redact("postgresql://user:pa/ss@host/db"),
            "postgresql://user:***@host/db"
        );
    }

    #[test]
    fn an_unencoded_at_in_the_password_is_refused_and_hidden() {
        let location = "postgresql://user:pa@ss@host/db";
        let shown = redact(location);
        assert_eq!(shown, "postgresql://user:***@host/db");
        let err = PgLocation::parse(location).unwrap_err().to_string();
        assert!(err.contains("%40") && !err.contains("ss@"), "{err}");
    }

    #[test]
    fn conninfo_passwords_are_hidden_quoted_or_not() {
        for (location, shown) in [
            (
                "host=db user=me password=s3cret dbname=x",
                "host=db user=me password=*** dbname=x",
            ),
            (
                "host=db password='s3 cr\\'et' dbname=x",
                "host=db password=*** dbname=x",
            ),
            ("host=db password = 's3 cret", "host=db password = ***"),
            ("host=db PASSWORD=s3cret", "host=db PASSWORD=***"),
        ] {
            assert_eq!(redact(location), shown, "{location}");
        }
        assert_eq!(redact("/data/my set.dsindex"), "/data/my set.dsindex");
        assert_eq!(redact("/data/passwords.dsindex"), "/data/passwords.dsindex");
        assert_eq!(redact("mysql://me:s@3@db/x"), "mysql://***@db/x");
    }

    #[test]
    fn tls_parameters_are_ours_and_checked() {
        let parsed = PgLocation::parse(
            "postgresql://me@127.0.0.1:5432/db?sslmode=verify-full&sslrootcert=/tmp/ca%20x.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(parsed.tls().mode, SslMode::VerifyFull);
        assert_eq!(parsed.tls().root_cert, Some(PathBuf::from("/tmp/ca x.pem")));
        assert_eq!(parsed.config().get_application_name(), Some("a"));
        assert_eq!(
            PgLocation::parse("postgresql://h/db").unwrap().tls().mode,
            SslMode::Prefer
        );
        let err = PgLocation::parse("postgresql://h/db?sslmode=verify")
            .unwrap_err()
            .to_string();
        assert!(err.contains("verify-full"), "{err}");
        // verify-full without a CA is refused before connecting.
        let no_ca = PgLocation::parse(
            "postgresql://h:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap();
        let err = no_ca.connect().err().expect("refused").to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
