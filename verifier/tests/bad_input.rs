//! One bad-input corpus against every route of a real server on 127.0.0.1: malformed JSON,
//! wrong types, unknown fields, huge strings and bodies, deep nesting, invalid UTF-8, wrong
//! content types, negative and absurd limits, unknown languages, empty and 10 000-item batches,
//! wrong methods and unknown paths. Every answer must come within a bound, carry the status
//! the case names (a typed `{"error": {"code", "message"}}` body for every 4xx), and the server
//! must stay healthy: `/healthz` after each case, no 5xx in its own `/metrics` at the end.
//! It prints a table of what it tried (`cargo test -p verifier --test bad_input -- --nocapture`).
//!
//! The code routes need the namespace backend (root); without it the test prints a skip line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use protocol::route;
use serde_json::{Value, json};
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};
use verifier::{AppState, Limits, app};

/// Longest any single answer may take.
const BOUND: Duration = Duration::from_secs(20);

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status, with the error body's `code` when it is a 4xx.
    Status(u16),
    /// 400 or 422 with the error body: either is right where the decoder may meet a type
    /// error before a syntax error (it reads in one pass).
    Reject,
    /// 200 with a SandboxFusion `SandboxError` (its answer to an unsupported language or a
    /// bad file path, as SandboxFusion gives it; nothing runs).
    SandboxError,
}

struct Case {
    method: &'static str,
    path: &'static str,
    name: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expect: Expect,
}

fn post(path: &'static str, name: impl Into<String>, body: impl Into<Vec<u8>>, code: u16) -> Case {
    Case {
        method: "POST",
        path,
        name: name.into(),
        content_type: Some("application/json"),
        body: body.into(),
        expect: Expect::Status(code),
    }
}

fn post_json(path: &'static str, name: impl Into<String>, body: Value, code: u16) -> Case {
    post(path, name, body.to_string(), code)
}

fn reject(path: &'static str, name: impl Into<String>, body: impl Into<Vec<u8>>) -> Case {
    Case {
        expect: Expect::Reject,
        ..post(path, name, body, 0)
    }
}

/// Marks the string field of a valid request that malformed fragments replace.
const SLOT: &str = "@@SLOT@@";

fn math_item() -> Value {
    json!({"response": "The answer is \\boxed{2}", "ground_truth": "2"})
}

fn code_item() -> Value {
    json!({"language": "python", "source_code": "print(1)", "tests": [{"stdin": "", "expected_stdout": "1"}]})
}

fn run_code() -> Value {
    json!({"code": "print(1)", "language": "python"})
}

/// `depth` nested arrays around `inner`.
fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Malformed bodies every POST route must refuse the same way. `valid` is a valid request
/// whose one string field is [`SLOT`]; the syntax errors are placed there, where the decoder
/// meets them first.
fn generic(path: &'static str, valid: &Value, limits: &Limits) -> Vec<Case> {
    let valid_text = valid.to_string().replace(SLOT, "x");
    let slotted = valid.to_string();
    let at_slot = |fragment: &[u8]| -> Vec<u8> {
        let (head, tail) = slotted.split_once(&format!("\"{SLOT}\"")).expect("slot");
        [head.as_bytes(), fragment, tail.as_bytes()].concat()
    };
    let mut cases = vec![
        post(path, "empty body", "", 400),
        post(path, "lone brace", "{", 400),
        post(path, "trailing garbage", format!("{valid_text}x"), 400),
        post(
            path,
            "two documents",
            format!("{valid_text}{valid_text}"),
            400,
        ),
        post(path, "single quotes", valid_text.replace('"', "'"), 400),
        post(
            path,
            "truncated",
            &valid_text.as_bytes()[..valid_text.len() / 2],
            400,
        ),
        post(path, "NaN literal", at_slot(b"NaN"), 400),
        post(
            path,
            "control character in a string",
            at_slot(b"\"a\x01b\""),
            400,
        ),
        post(path, "unterminated string", at_slot(b"\"abc"), 400),
        post(path, "lone surrogate escape", at_slot(br#""\ud800""#), 400),
        post(path, "bad escape", at_slot(br#""\q""#), 400),
        post(
            path,
            "invalid UTF-8 in a string",
            at_slot(b"\"\xff\xfe\xc3\x28\""),
            400,
        ),
        post(
            path,
            "overlong UTF-8 encoding",
            at_slot(b"\"\xc0\xaf\""),
            400,
        ),
        post(
            path,
            "UTF-16 body",
            valid_text
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
            400,
        ),
        post(
            path,
            "byte-order mark",
            [&[0xef, 0xbb, 0xbf][..], valid_text.as_bytes()].concat(),
            400,
        ),
        reject(path, "number too large for f64", at_slot(b"1e400")),
        reject(path, "nesting 100 000 deep", nested(100_000, "")),
        reject(
            path,
            "nesting 100 000 deep in a field",
            at_slot(nested(100_000, "").as_bytes()),
        ),
        reject(
            path,
            "objects nested 10 000 deep in a field",
            at_slot(format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).as_bytes()),
        ),
        post_json(path, "null", Value::Null, 422),
        post_json(path, "array", json!([valid]), 422),
        post_json(path, "string", json!("items"), 422),
        post_json(path, "number", json!(1e300), 422),
        post_json(path, "empty object", json!({}), 422),
        post(
            path,
            "body over the limit",
            {
                let mut b = br#"{"pad": ""#.to_vec();
                b.resize(limits.max_body_bytes + 1, b'a');
                b
            },
            413,
        ),
    ];
    let mut unknown: Value = serde_json::from_str(&valid_text).unwrap();
    unknown["surprise"] = json!(true);
    cases.push(post_json(path, "unknown top-level field", unknown, 422));
    for (name, ct) in [
        ("no content type", None),
        ("text/plain", Some("text/plain")),
        ("form encoded", Some("application/x-www-form-urlencoded")),
    ] {
        cases.push(Case {
            method: "POST",
            path,
            name: name.into(),
            content_type: ct,
            body: valid_text.clone().into_bytes(),
            expect: Expect::Status(400),
        });
    }
    for method in ["GET", "PUT", "DELETE"] {
        cases.push(Case {
            method,
            path,
            name: format!("{method} instead of POST"),
            content_type: None,
            body: Vec::new(),
            expect: Expect::Status(405),
        });
    }
    cases
}

fn math_cases(limits: &Limits) -> Vec<Case> {
    let p = route::MATH_GRADE;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut item = math_item();
        f(&mut item);
        json!({ "items": [item] })
    };
    let batch = |n: usize| json!({ "items": vec![math_item(); n] });
    let slotted = json!({"items": [{"response": SLOT, "ground_truth": "2"}]});
    let mut cases = generic(p, &slotted, limits);
    cases.extend([
        post_json(p, "items is an object", json!({"items": {"a": 1}}), 422),
        post_json(p, "items is a string", json!({"items": "x"}), 422),
        post_json(p, "item is a number", json!({"items": [1]}), 422),
        post_json(
            p,
            "response missing",
            with(&|i| {
                i.as_object_mut().unwrap().remove("response");
            }),
            422,
        ),
        post_json(
            p,
            "ground_truth missing",
            with(&|i| {
                i.as_object_mut().unwrap().remove("ground_truth");
            }),
            422,
        ),
        post_json(
            p,
            "response is a number",
            with(&|i| i["response"] = json!(5)),
            422,
        ),
        post_json(
            p,
            "response is null",
            with(&|i| i["response"] = Value::Null),
            422,
        ),
        post_json(
            p,
            "ground_truth is an array",
            with(&|i| i["ground_truth"] = json!(["2"])),
            422,
        ),
        post_json(p, "id is a number", with(&|i| i["id"] = json!(7)), 422),
        post_json(
            p,
            "unknown item field",
            with(&|i| i["score"] = json!(1)),
            422,
        ),
        post_json(
            p,
            "options is a string",
            with(&|i| i["options"] = json!("strict")),
            422,
        ),
        post_json(
            p,
            "unknown option",
            with(&|i| i["options"] = json!({"fast": true})),
            422,
        ),
        post_json(
            p,
            "unknown extraction target",
            with(&|i| i["options"] = json!({"extraction": ["regex"]})),
            422,
        ),
        post_json(
            p,
            "negative float_rounding",
            with(&|i| i["options"] = json!({"float_rounding": -1})),
            422,
        ),
        post_json(
            p,
            "absurd float_rounding",
            with(&|i| i["options"] = json!({"float_rounding": 4_000_000_000u64})),
            422,
        ),
        post_json(
            p,
            "fractional float_rounding",
            with(&|i| i["options"] = json!({"float_rounding": 2.5})),
            422,
        ),
        post_json(
            p,
            "absurd boxed priority",
            with(&|i| i["options"] = json!({"latex_boxed_match_priority": 1e20})),
            422,
        ),
        post_json(p, "empty batch", json!({"items": []}), 200),
        post_json(p, "10 000 items (the limit)", batch(10_000), 200),
        post_json(p, "10 001 items", batch(limits.max_batch_items + 1), 422),
        post_json(
            p,
            "1 MiB response",
            with(&|i| i["response"] = json!(format!("{}\\boxed{{2}}", "9".repeat(1 << 20)))),
            200,
        ),
        post_json(
            p,
            "1 MiB of nested braces",
            with(&|i| i["response"] = json!(format!("\\boxed{{{}", "{".repeat(1 << 20)))),
            200,
        ),
        post_json(
            p,
            "1 MiB ground truth",
            with(&|i| i["ground_truth"] = json!("(".repeat(1 << 20))),
            200,
        ),
    ]);
    cases
}

fn code_cases(limits: &Limits) -> Vec<Case> {
    let p = route::CODE_JUDGE;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut item = code_item();
        f(&mut item);
        json!({ "items": [item] })
    };
    let mut slotted = code_item();
    slotted["source_code"] = json!(SLOT);
    let mut cases = generic(p, &json!({ "items": [slotted] }), limits);
    cases.extend([
        post_json(p, "unknown language", with(&|i| i["language"] = json!("cobol")), 422),
        post_json(p, "empty language", with(&|i| i["language"] = json!("")), 422),
        post_json(p, "path as language", with(&|i| i["language"] = json!("../../bin/sh")), 422),
        reject(p, "language is a number", with(&|i| i["language"] = json!(3)).to_string()),
        post_json(p, "no program", with(&|i| { i.as_object_mut().unwrap().remove("source_code"); }), 422),
        post_json(p, "both source_code and response", with(&|i| i["response"] = json!("```python\nprint(1)\n```")), 422),
        post_json(p, "no tests", with(&|i| i["tests"] = json!([])), 422),
        post_json(p, "tests is an object", with(&|i| i["tests"] = json!({"stdin": ""})), 422),
        post_json(p, "test of no known shape", with(&|i| i["tests"] = json!([{"input": "1"}])), 422),
        post_json(p, "test with an extra field", with(&|i| i["tests"] = json!([{"stdin": "", "expected_stdout": "1", "x": 1}])), 422),
        post_json(p, "negative time limit", with(&|i| i["time_limit_s"] = json!(-1)), 422),
        post_json(p, "zero time limit", with(&|i| i["time_limit_s"] = json!(0)), 422),
        post_json(p, "absurd time limit", with(&|i| i["time_limit_s"] = json!(1e12)), 422),
        post_json(p, "time limit as text", with(&|i| i["time_limit_s"] = json!("10")), 422),
        post_json(p, "negative memory limit", with(&|i| i["memory_limit_mb"] = json!(-5)), 422),
        post_json(p, "tiny memory limit", with(&|i| i["memory_limit_mb"] = json!(1)), 422),
        post_json(p, "absurd memory limit", with(&|i| i["memory_limit_mb"] = json!(u64::MAX)), 422),
        post_json(p, "unknown backend", with(&|i| i["backend"] = json!("docker")), 422),
        post_json(p, "unknown reward mode", with(&|i| i["options"] = json!({"reward": "partial"})), 422),
        post_json(p, "negative tolerance", with(&|i| i["options"] = json!({"float_rel_tol": -0.1})), 422),
        post_json(p, "call test on C++", with(&|i| { i["language"] = json!("cpp"); i["tests"] = json!([{"fn_name": "f", "args_json": "[]", "expected_json": "1"}]); }), 422),
        post_json(p, "call test args not JSON", with(&|i| i["tests"] = json!([{"fn_name": "f", "args_json": "[1,", "expected_json": "1"}])), 422),
        post_json(p, "source over the code limit", with(&|i| i["source_code"] = json!("#".repeat(limits.max_code_bytes + 1))), 422),
        post_json(p, "stdin over the limit", with(&|i| i["tests"] = json!([{"stdin": "1".repeat(limits.max_stdin_bytes + 1), "expected_stdout": "1"}])), 422),
        post_json(p, "too many tests", with(&|i| i["tests"] = json!(vec![json!({"stdin": "", "expected_stdout": "1"}); limits.max_tests_per_item + 1])), 422),
        post_json(p, "10 000 items", json!({"items": vec![code_item(); 10_000]}), 422),
        post_json(p, "empty batch", json!({"items": []}), 200),
    ]);
    cases
}

fn run_code_cases(limits: &Limits) -> Vec<Case> {
    let p = route::RUN_CODE;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut r = run_code();
        f(&mut r);
        r
    };
    let mut cases = generic(p, &with(&|r| r["code"] = json!(SLOT)), limits);
    cases.extend([
        post_json(
            p,
            "code missing",
            with(&|r| {
                r.as_object_mut().unwrap().remove("code");
            }),
            422,
        ),
        post_json(
            p,
            "language missing",
            with(&|r| {
                r.as_object_mut().unwrap().remove("language");
            }),
            422,
        ),
        post_json(p, "code is a number", with(&|r| r["code"] = json!(1)), 422),
        post_json(
            p,
            "stdin is an array",
            with(&|r| r["stdin"] = json!(["1"])),
            422,
        ),
        post_json(
            p,
            "negative run timeout",
            with(&|r| r["run_timeout"] = json!(-3)),
            422,
        ),
        post_json(
            p,
            "absurd run timeout",
            with(&|r| r["run_timeout"] = json!(1e300)),
            422,
        ),
        post_json(
            p,
            "negative compile timeout",
            with(&|r| r["compile_timeout"] = json!(-1)),
            422,
        ),
        post_json(
            p,
            "memory -5 MB",
            with(&|r| r["memory_limit_MB"] = json!(-5)),
            422,
        ),
        post_json(
            p,
            "memory 10^15 MB",
            with(&|r| r["memory_limit_MB"] = json!(1_000_000_000_000_000i64)),
            422,
        ),
        post_json(
            p,
            "memory as text",
            with(&|r| r["memory_limit_MB"] = json!("1024")),
            422,
        ),
        post_json(
            p,
            "fetch_files over the name limit",
            with(&|r| r["fetch_files"] = json!(vec!["out.txt"; 300])),
            422,
        ),
        post_json(
            p,
            "fetch_files not a list",
            with(&|r| r["fetch_files"] = json!("out.txt")),
            422,
        ),
        post_json(
            p,
            "file not base64",
            with(&|r| r["files"] = json!({"a.txt": "%%%"})),
            422,
        ),
        Case {
            expect: Expect::SandboxError,
            ..post_json(
                p,
                "file path escaping /src",
                with(&|r| r["files"] = json!({"../etc/passwd": "eA=="})),
                200,
            )
        },
        Case {
            expect: Expect::SandboxError,
            ..post_json(
                p,
                "absolute file path",
                with(&|r| r["files"] = json!({"/tmp/x": "eA=="})),
                200,
            )
        },
        post_json(
            p,
            "code over the limit",
            with(&|r| r["code"] = json!("#".repeat(limits.max_code_bytes + 1))),
            422,
        ),
    ]);
    for lang in [
        "cobol",
        "",
        "../../bin/sh",
        "python; rm -rf /",
        "python\u{0}",
    ] {
        cases.push(Case {
            expect: Expect::SandboxError,
            ..post_json(
                p,
                format!("language {lang:?}"),
                with(&|r| r["language"] = json!(lang)),
                200,
            )
        });
    }
    cases
}

fn other_cases() -> Vec<Case> {
    let get = |path: &'static str, name: &str, code: u16| Case {
        method: "GET",
        path,
        name: name.into(),
        content_type: None,
        body: Vec::new(),
        expect: Expect::Status(code),
    };
    let mut cases = vec![
        get("/v2/math/grade", "unknown version", 404),
        get("/v1/math/grade/../../etc/passwd", "dot segments", 404),
        get("/%ff%fe", "invalid UTF-8 in the path", 404),
        get("/v1/math", "route prefix", 404),
    ];
    for path in [
        route::HEALTHZ,
        route::READYZ,
        route::METRICS,
        route::OPENAPI,
        route::PING,
    ] {
        cases.push(Case {
            method: "POST",
            ..get(path, &format!("POST to GET-only {path}"), 405)
        });
        cases.push(Case {
            method: "DELETE",
            ..get(path, &format!("DELETE to {path}"), 405)
        });
    }
    cases
}

/// Per-route tally for the printed table.
#[derive(Default)]
struct Tally {
    cases: usize,
    statuses: BTreeMap<u16, usize>,
    slowest: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_bad_input_with_a_typed_4xx_in_bounded_time() {
    let ns = match NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
        ..NsConfig::default()
    }) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("SKIP bad_input: the namespace backend is unavailable here: {e}");
            return;
        }
    };
    // A stdin limit below the body limit, so that its own check (not the body limit) answers.
    let limits = Limits {
        max_stdin_bytes: 1 << 20,
        ..Limits::default()
    };
    let state = AppState::new(limits, None).with_judge(Judge::new(Ok(ns)));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let http = reqwest::Client::builder().timeout(BOUND).build().unwrap();

    let mut cases = math_cases(&limits);
    cases.extend(code_cases(&limits));
    cases.extend(run_code_cases(&limits));
    cases.extend(other_cases());

    let mut tally: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in &cases {
        let mut req = http.request(case.method.parse().unwrap(), format!("{base}{}", case.path));
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        let started = Instant::now();
        let resp = req.body(case.body.clone()).send().await;
        let elapsed = started.elapsed();
        let what = format!("{} {} [{}]", case.method, case.path, case.name);
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{what}: no answer: {e}"));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let t = tally.entry(case.path).or_default();
        t.cases += 1;
        *t.statuses.entry(status).or_default() += 1;
        t.slowest = t.slowest.max(elapsed);
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let short = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        match case.expect {
            Expect::Status(want) if status != want => {
                failures.push(format!("{what}: {status} (want {want}): {short}"));
            }
            Expect::Status(want) if (400..500).contains(&want) => {
                let code = json.as_ref().and_then(|v| v["error"]["code"].as_str());
                let message = json.as_ref().and_then(|v| v["error"]["message"].as_str());
                if code.is_none() || message.is_none_or(str::is_empty) {
                    failures.push(format!(
                        "{what}: {status} without a typed error body: {short}"
                    ));
                }
            }
            Expect::Reject => {
                let code = json.as_ref().and_then(|v| v["error"]["code"].as_str());
                if !matches!(status, 400 | 422) || code.is_none() {
                    failures.push(format!(
                        "{what}: {status} (want a typed 400 or 422): {short}"
                    ));
                }
            }
            Expect::SandboxError => {
                let status_field = json.as_ref().and_then(|v| v["status"].as_str());
                if status != 200 || status_field != Some("SandboxError") {
                    failures.push(format!("{what}: {status} {short} (want 200 SandboxError)"));
                }
            }
            Expect::Status(_) => {}
        }
        if elapsed > BOUND {
            failures.push(format!("{what}: took {elapsed:?}"));
        }
        let health = http.get(format!("{base}{}", route::HEALTHZ)).send().await;
        if !health.is_ok_and(|r| r.status().is_success()) {
            failures.push(format!("{what}: /healthz failed afterwards"));
            break;
        }
    }

    let metrics = http
        .get(format!("{base}{}", route::METRICS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let server_errors: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("verifier_requests_total") && l.contains("status=\"5"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    server.abort();

    println!(
        "{:<22} {:>6}  {:<40} {:>10}",
        "route", "cases", "statuses", "slowest ms"
    );
    for (path, t) in &tally {
        let statuses: Vec<String> = t.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        println!(
            "{path:<22} {:>6}  {:<40} {:>10.1}",
            t.cases,
            statuses.join(" "),
            t.slowest.as_secs_f64() * 1e3
        );
    }
    println!(
        "bad input: {} cases, {} failures, {server_errors} × 5xx in the server's metrics",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(server_errors, 0);
}
