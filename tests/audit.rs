use serde_json::json;
use trainer::audit::{self, AuditCommand, ExportFormat};
use trainer::store::{RolloutFilter, RolloutRow, RunRecord, Store};

use crate::support::FreshDb;

fn row(
    step: i32,
    prompt: &str,
    sample: i32,
    response: &str,
    reward: f64,
    verdict: &str,
    extracted: Option<&str>,
) -> RolloutRow {
    RolloutRow {
        run_id: "a1".into(),
        step,
        prompt_id: prompt.into(),
        data_source: if verdict.contains('_') || verdict == "accepted" {
            "apps".into()
        } else {
            "gsm8k".into()
        },
        sample_idx: sample,
        prompt: format!("{prompt}?"),
        response: response.into(),
        ground_truth: "4".into(),
        num_tokens: response.len() as i32,
        finished: true,
        reward,
        verdict: verdict.into(),
        extracted: extracted.map(str::to_string),
        verifier_result: json!({"verdict": verdict}),
        advantage: 0.0,
        mean_entropy: 0.5,
    }
}

async fn seed(store: &Store) {
    let run = RunRecord {
        run_id: "a1".into(),
        method: "steer".into(),
        model: "m".into(),
        config: json!({}),
        git_rev: None,
    };
    store.create_run(&run).await.unwrap();
    let mut rows = vec![
        row(0, "p1", 0, "\\boxed{4}", 1.0, "correct", Some("4")),
        row(0, "p1", 1, "\\boxed{5}", 0.0, "incorrect", Some("5")),
        row(0, "p1", 2, "no answer at all", 1.0, "correct", None), // reward without answer
        row(
            0,
            "p1",
            3,
            &format!("{}\\boxed{{4}}", "blah ".repeat(40)),
            1.0,
            "correct",
            Some("4"),
        ), // long outlier
        row(
            1,
            "p2",
            0,
            "import sys; sys.exit(0)",
            1.0,
            "accepted",
            Some(""),
        ), // exit hack
        row(
            1,
            "p2",
            1,
            "frequency 100% of_cases",
            0.0,
            "wrong_answer",
            Some("x"),
        ), // no false exit hit
        row(1, "p1", 0, "\\boxed{5}", 1.0, "correct", Some("5")),  // same response, other reward
    ];
    for i in 4..8 {
        rows.push(row(0, "p1", i, "\\boxed{3}", 0.0, "incorrect", Some("3")));
    }
    // Code smells: an accepted program printing one output for both tests, slowly; a program
    // the sandbox could not run.
    let program = "n = int(input())\nprint(7)\n";
    let mut smelly = row(
        1,
        "p3",
        0,
        &format!("```python\n{program}```"),
        1.0,
        "accepted",
        Some(program),
    );
    smelly.verifier_result = json!({"verdict": "accepted", "passed": 2, "total": 2, "time_limit_s": 1.0,
        "tests": [{"verdict": "accepted", "stdout_head": "7\n", "time_ms": 120.0},
                  {"verdict": "accepted", "stdout_head": "7\n", "time_ms": 930.0}]});
    rows.push(smelly);
    let mut broken = row(1, "p3", 1, "```\nprint(7)\n```", 0.0, "sandbox_error", None);
    broken.verifier_result = json!({"verdict": "sandbox_error", "message": "no cgroup"});
    rows.push(broken);
    store.insert_rollouts(&rows).await.unwrap();
}

async fn check(store: &Store) {
    seed(store).await;
    let kinds: Vec<(String, String, i64)> = store
        .suspicious("a1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.kind, s.prompt_id, s.sample_idx))
        .collect();
    assert!(
        kinds.contains(&("reward_without_answer".into(), "p1".into(), 2)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("exit_hack_accepted".into(), "p2".into(), 0)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("long_outlier".into(), "p1".into(), 3)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("inconsistent_reward".into(), "p1".into(), 1)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("inconsistent_reward".into(), "p1".into(), 0)),
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|(k, p, s)| k == "exit_hack_accepted" && p == "p2" && *s == 1),
        "{kinds:?}"
    );
    for (kind, prompt, sample) in [
        ("accepted_trivial_program", "p2", 0),
        ("same_output_all_tests", "p3", 0),
        ("near_time_limit", "p3", 0),
        ("sandbox_error", "p3", 1),
    ] {
        assert!(
            kinds.contains(&(kind.into(), prompt.into(), sample)),
            "{kind}: {kinds:?}"
        );
    }
    assert!(
        !kinds
            .iter()
            .any(|(k, p, _)| k == "accepted_trivial_program" && p == "p3"),
        "{kinds:?}"
    );

    // Per data source and verdict.
    let by: Vec<(String, String, i64)> = store
        .by_source("a1")
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.data_source, v.verdict, v.rollouts))
        .collect();
    assert_eq!(
        by,
        [
            ("apps".into(), "accepted".into(), 2),
            ("apps".into(), "sandbox_error".into(), 1),
            ("apps".into(), "wrong_answer".into(), 1),
            ("gsm8k".into(), "incorrect".into(), 5),
            ("gsm8k".into(), "correct".into(), 4),
        ]
    );
    let apps = store.by_source("a1").await.unwrap();
    assert!((apps[0].share - 0.5).abs() < 1e-9 && (apps[0].reward_mean - 1.0).abs() < 1e-9);

    let summary = store.summary("a1").await.unwrap();
    assert_eq!(summary.len(), 2);
    assert_eq!(summary[0].rollouts, 8);
    assert_eq!(summary[0].verdicts, "incorrect:5 correct:3");
    assert!((summary[0].accuracy - 3.0 / 8.0).abs() < 1e-9);

    let f = |contains: &str| RolloutFilter {
        contains: Some(contains.into()),
        ..RolloutFilter::default()
    };
    assert_eq!(
        store.rollouts("a1", &f("SYS.EXIT")).await.unwrap().len(),
        1,
        "case-insensitive"
    );
    assert_eq!(store.rollouts("a1", &f("100%")).await.unwrap().len(), 1);
    assert_eq!(
        store.rollouts("a1", &f("0%_")).await.unwrap().len(),
        0,
        "wildcards are literal"
    );
    let correct = RolloutFilter {
        verdict: Some("correct".into()),
        step: Some(0),
        min_reward: Some(0.5),
        limit: Some(2),
        ..RolloutFilter::default()
    };
    let got = store.rollouts("a1", &correct).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.verdict == "correct" && r.step == 0));

    let runs = store.runs().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].rollouts, runs[0].steps), (13, 0));

    // The CLI renderer: a table by default, JSON on request, exports.
    let mut out = Vec::new();
    audit::run(
        store,
        &AuditCommand::Summary { run: "a1".into() },
        false,
        &mut out,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("step  rollouts  reward"),
        "{text}"
    );
    // Two steps, a blank line, then the breakdown by data source and verdict.
    assert_eq!(text.lines().count(), 4 + 1 + 2 + 5, "{text}");
    assert!(
        text.lines().nth(5).unwrap().starts_with("source "),
        "{text}"
    );
    let mut out = Vec::new();
    audit::run(
        store,
        &AuditCommand::Prompt {
            run: "a1".into(),
            prompt_id: "p2".into(),
        },
        true,
        &mut out,
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let mut out = Vec::new();
    let export = AuditCommand::Export {
        run: "a1".into(),
        format: ExportFormat::Jsonl,
        out: None,
    };
    audit::run(store, &export, false, &mut out).await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 13);
    let mut out = Vec::new();
    let sources = AuditCommand::Sources { run: "a1".into() };
    audit::run(store, &sources, true, &mut out).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 5);
    assert_eq!(v[0]["data_source"], "apps");
    let missing = AuditCommand::Summary { run: "nope".into() };
    assert!(
        audit::run(store, &missing, false, &mut Vec::new())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn audit_queries_on_postgres() {
    let db = FreshDb::create().await;
    let store = Store::connect(&db.url).await.unwrap();
    check(&store).await;
    store.close().await;
}

#[tokio::test]
async fn audit_queries_on_sqlite() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    check(&store).await;
    store.close().await;
}
