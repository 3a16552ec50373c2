//! A small run of the PostgreSQL load test (examples/pg_load.rs has the
//! full one, figures in docs/robustness.md): 8 `dreamsimmatch` pipelines
//! and 2 writers on the server `.ci/run` starts, restarted in the middle.
//! Nothing acknowledged is lost and every frame comes out; frames that
//! passed unchecked during the restart are counted, not asserted (how many
//! depends on how long the restart takes).

mod pg_load_common;

use std::time::Duration;

#[test]
#[ignore = "needs PostgreSQL + pgvector in DREAMSIM_TEST_PG (.ci/run starts one) and restarts it"]
fn a_server_restart_loses_no_frame_and_no_entry() {
    let location = std::env::var("DREAMSIM_TEST_PG").expect("DREAMSIM_TEST_PG");
    let report = pg_load_common::run(pg_load_common::LoadConfig {
        location,
        table: dreamsim_index::DEFAULT_PG_TABLE.into(),
        model: dreamsim_testsupport::fixture("tiny_ensemble.onnx"),
        pipelines: 8,
        frames: 150,
        writers: 2,
        entries_per_writer: 300,
        batch: 20,
        prefill: 1000,
        restart_after: Duration::from_secs(2),
        restart: pg_load_common::restart_test_server(dreamsim_testsupport::repo_root()),
    });
    eprintln!("{report:#?}");
    assert!(
        report.restart_seconds.is_finite(),
        "the server was restarted during the run"
    );
    assert_eq!(report.frames_in, 8 * 150);
    assert_eq!(report.frames_out, report.frames_in, "frames lost");
    assert_eq!(report.entries_acknowledged, 600);
    assert_eq!(report.entries_lost, 0, "acknowledged entries lost");
    assert!(report.lookups > 0);
}
