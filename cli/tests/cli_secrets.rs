//! No password in anything the tool prints (issue #20, item 3): a password
//! with `/`, `?` or `@` in it (percent-encoded or not), a `password=`
//! parameter, a libpq `key=value` string (quoted values too) and
//! `PGPASSWORD`, through `index info` (text and JSON) and `corpus match`.
//! No server is needed: nothing listens on port 9, so every path that
//! reports the location is taken.

mod common;

use std::process::Command;

use common::*;

const MODEL: &str = "tests/fixtures/tiny_ensemble.onnx";

/// Hostile locations and the fragments of their password that must never
/// be printed.
fn locations() -> Vec<(String, Vec<&'static str>)> {
    vec![
        (
            "postgresql://moderator:s3cret/Pa55@127.0.0.1:9/sets".into(),
            vec!["s3cret", "Pa55"],
        ),
        (
            "postgresql://moderator:s3cret?Pa55@127.0.0.1:9/sets".into(),
            vec!["s3cret", "Pa55"],
        ),
        (
            "postgresql://moderator:s3cret@Pa55@127.0.0.1:9/sets".into(),
            vec!["s3cret", "Pa55"],
        ),
        (
            "postgresql://moderator:s3cret%40Pa55@127.0.0.1:9/sets".into(),
            vec!["s3cret", "Pa55"],
        ),
        (
            "postgres://moderator:s3cret%2FPa55@127.0.0.1:9/sets?sslmode=disable".into(),
            vec!["s3cret", "Pa55"],
        ),
        (
            "postgresql://moderator@127.0.0.1:9/sets?sslmode=disable&password=s3cret%26Pa55".into(),
            vec!["s3cret", "Pa55"],
        ),
        (
            "postgresql://moderator@127.0.0.1:9/sets?pass%77ord=s3cret".into(),
            vec!["s3cret"],
        ),
        (
            "host=127.0.0.1 port=9 password='s3cret Pa55' dbname=sets".into(),
            vec!["s3cret", "Pa55"],
        ),
        (
            "host=127.0.0.1 port=9 password=s3cret\\ Pa55".into(),
            vec!["s3cret", "Pa55"],
        ),
    ]
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gst-dreamsim"));
    command.args(args).current_dir(repo_root());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn assert_hidden(args: &[&str], env: &[(&str, &str)], fragments: &[&str]) {
    let output = run_with_env(args, env);
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert_ne!(output.status.code(), Some(0), "{args:?}: {text}");
    assert_ne!(output.status.code(), Some(101), "{args:?} panicked: {text}");
    for fragment in fragments {
        assert!(
            !text.contains(fragment),
            "{args:?} printed {fragment}: {text}"
        );
    }
    assert!(
        text.contains("127.0.0.1"),
        "{args:?}: the server is named: {text}"
    );
}

#[test]
fn index_info_never_prints_a_password() {
    for (location, fragments) in locations() {
        assert_hidden(&["index", "info", &location], &[], &fragments);
        assert_hidden(&["index", "info", "--json", &location], &[], &fragments);
    }
}

#[test]
fn corpus_match_never_prints_a_password() {
    for (location, fragments) in locations() {
        assert_hidden(
            &[
                "corpus",
                "match",
                "--model",
                MODEL,
                "--provider",
                "cpu",
                "--index",
                &location,
            ],
            &[],
            &fragments,
        );
    }
}

#[test]
fn pgpassword_is_never_printed() {
    let env = [("PGPASSWORD", "s3cret-from-env")];
    let location = "postgresql://moderator@127.0.0.1:9/sets";
    assert_hidden(&["index", "info", location], &env, &["s3cret"]);
    assert_hidden(&["index", "info", "--json", location], &env, &["s3cret"]);
}
