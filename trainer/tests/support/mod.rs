//! Helpers shared by the trainer's process-level tests.

use std::path::Path;

/// `RUN_DIR/metrics.jsonl` without what differs between two runs of the same config: the
/// wall-clock timings and the run id. Equal results mean the runs computed the same steps.
pub(crate) fn comparable_metrics(run_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join(trainer::train::METRICS_FILE))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let fields = v.as_object_mut().unwrap();
            fields.remove("timings");
            fields.remove("run_id");
            v
        })
        .collect()
}
