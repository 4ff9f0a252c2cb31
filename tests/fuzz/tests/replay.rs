//! Every file of `corpus/<target>/` through its target: the seeds, and each input a fuzzing
//! run found a failure with (kept there as a regression test once fixed).

use std::path::PathBuf;

#[test]
fn corpus_replays_without_failures() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut replayed = 0;
    for (target, check) in wasp_fuzz::TARGETS {
        let dir = root.join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut files = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            eprintln!("{target}: {}", path.display());
            check(&data);
            files += 1;
        }
        assert!(files > 0, "{target} has seeds");
        replayed += files;
    }
    eprintln!("replayed {replayed} inputs");
}
