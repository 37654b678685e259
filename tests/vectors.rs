//! Every vector file, run against the native library.

#![allow(clippy::expect_used)]

use hooksign_vectors::{Native, project_files, run_files};

#[test]
fn every_vector_passes_on_the_native_library() {
    let files = project_files().expect("the vector files");
    let report = run_files(&files, &mut Native).expect("readable vector files");
    for failure in &report.failures {
        eprintln!("{failure}");
    }
    eprintln!("native: {}", report.summary());
    assert!(report.failures.is_empty(), "native: {}", report.summary());
}
