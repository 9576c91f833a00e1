//! Two writers at once (e.g. `index rebuild` while `index add` runs) each get their own version, and
//! every version they leave is complete and loadable.

use twotower_data::NoProgress;
use twotower_index::synthetic::clustered_unit_vectors;
use twotower_index::{HnswParams, IndexDir, VersionId};

#[test]
fn concurrent_builds_claim_distinct_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = IndexDir::new(tmp.path().join("idx"));
    let dim = 16;
    let params = HnswParams {
        m: 8,
        ef_construction: 32,
        ef_search: 32,
    };
    let ids: Vec<String> = (0..300).map(|i| format!("i{i}")).collect();
    let v0 = clustered_unit_vectors(300, dim, 10, 0.3, 1);
    dir.build_version(&ids, &v0, dim, params, "model-a", &NoProgress)
        .unwrap();
    let versions: Vec<VersionId> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (dir, ids) = (&dir, &ids);
                s.spawn(move || {
                    let v = clustered_unit_vectors(300, dim, 10, 0.3, 10 + t);
                    dir.build_version(ids, &v, dim, params, "model-a", &NoProgress)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = versions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "two writers claimed one version: {versions:?}");
    for v in sorted {
        let loaded = dir.open_version(v, Some("model-a")).unwrap();
        assert_eq!(loaded.ids().len(), 300);
    }
    assert!(versions.contains(&dir.current().unwrap()));
}
