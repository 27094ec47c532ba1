//! The code routes over HTTP: `/v1/code/judge`, SandboxFusion's `/run_code` (with verl's
//! fixtures: success, wrong output, compile error, runtime error, timeout, each mapped to
//! verl's result code exactly as `check_correctness` does), `/v1/ping`, and the 4xx paths.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use protocol::route;
use serde_json::{Value, json};
use tower::ServiceExt;
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};
use verifier::{AppState, app};

fn state() -> Option<AppState> {
    let ns = NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
        ..NsConfig::default()
    });
    match ns {
        Ok(ns) => Some(AppState::default().with_judge(Judge::new(Ok(ns)))),
        Err(e) => {
            eprintln!("SKIP: namespace backend unavailable here: {e}");
            None
        }
    }
}

async fn call(state: AppState, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

fn post(path: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// verl's `check_correctness` mapping of one `/run_code` answer against an expected output
/// (`verl/utils/reward_score/sandbox_fusion/utils.py`): True, False, -1 API/sandbox error,
/// -2 runtime error, -3 timeout, -4 compile error.
fn verl_code(v: &Value, expected: &str) -> Value {
    let compile = &v["compile_result"];
    let run = &v["run_result"];
    if v["status"] == "SandboxError" {
        return json!(-1);
    }
    if compile.is_object()
        && (compile["status"] == "TimeLimitExceeded" || compile["return_code"] != json!(0))
    {
        return json!(-4);
    }
    if run["status"] == "TimeLimitExceeded" {
        return json!(-3);
    }
    if run["status"] == "Error" || run["return_code"] != json!(0) {
        return json!(-2);
    }
    let out = run["stdout"].as_str().unwrap_or("");
    json!(out.trim_end_matches('\n') == expected.trim_end_matches('\n'))
}

#[tokio::test]
async fn run_code_matches_sandbox_fusion_shapes_for_verl() {
    let Some(state) = state() else { return };
    let cases = [
        (
            "success",
            "python",
            "print(int(input()) + 1)",
            "1",
            "2\n",
            json!(true),
        ),
        (
            "wrong output",
            "python",
            "print(int(input()) + 2)",
            "1",
            "2\n",
            json!(false),
        ),
        (
            "compile error",
            "cpp",
            "int main() { a = b; }",
            "",
            "",
            json!(-4),
        ),
        (
            "runtime error",
            "python",
            "raise ValueError('x')",
            "",
            "",
            json!(-2),
        ),
        (
            "timeout",
            "python",
            "import time\ntime.sleep(10)",
            "",
            "",
            json!(-3),
        ),
        (
            "cpp success",
            "cpp",
            "#include <cstdio>\nint main(){int a;scanf(\"%d\",&a);printf(\"%d\\n\",a*2);}",
            "21",
            "42\n",
            json!(true),
        ),
    ];
    for (name, lang, code, stdin, expected, verl) in cases {
        let body = json!({"code": code, "language": lang, "stdin": stdin,
                          "compile_timeout": 10, "run_timeout": 2, "memory_limit_MB": 512});
        let (status, v) = call(state.clone(), post(route::RUN_CODE, &body)).await;
        assert_eq!(status, StatusCode::OK, "{name}: {v}");
        for key in [
            "status",
            "message",
            "compile_result",
            "run_result",
            "executor_pod_name",
            "files",
        ] {
            assert!(v.get(key).is_some(), "{name}: missing {key}: {v}");
        }
        assert_eq!(verl_code(&v, expected), verl, "{name}: {v}");
    }
    // Unknown languages are a SandboxError answer, not an HTTP error.
    let (status, v) = call(
        state.clone(),
        post(route::RUN_CODE, &json!({"code": "x", "language": "cobol"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "SandboxError", "{v}");
    assert_eq!(verl_code(&v, ""), json!(-1));
}

#[tokio::test]
async fn judge_code_batch_in_order() {
    let Some(state) = state() else { return };
    let body = json!({"items": [
        {"id": "ok", "language": "python", "source_code": "print(sum(map(int, input().split())))",
         "tests": [{"stdin": "1 2", "expected_stdout": "3"}, {"stdin": "5 5", "expected_stdout": "10\n"}]},
        {"id": "half", "language": "python", "source_code": "print(1)", "options": {"reward": "pass_rate"},
         "tests": [{"stdin": "", "expected_stdout": "1"}, {"stdin": "", "expected_stdout": "2"}]},
        {"id": "ce", "language": "c", "source_code": "int main( {", "tests": [{"stdin": "", "expected_stdout": ""}]},
        {"id": "resp", "language": "python", "response": "Here:\n```python\nprint('hi')\n```\n",
         "tests": [{"expected_stdout": "hi"}]},
        {"id": "call", "language": "python", "source_code": "def f(x):\n    return [x, x * 2]\n",
         "tests": [{"fn_name": "f", "args_json": "[3]", "expected_json": "[3, 6]"}]}
    ]});
    let (status, v) = call(state.clone(), post(route::CODE_JUDGE, &body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let r = v["results"].as_array().unwrap();
    let got: Vec<(&str, &str, f64)> = r
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap(),
                x["verdict"].as_str().unwrap(),
                x["reward"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ok", "accepted", 1.0),
            ("half", "wrong_answer", 0.5),
            ("ce", "compile_error", 0.0),
            ("resp", "accepted", 1.0),
            ("call", "accepted", 1.0)
        ]
    );
    assert_eq!(r[0]["backend"], "ns");
    assert_eq!(r[1]["passed"], 1);
    // The metrics count the verdicts.
    let (_, m) = call(
        state.clone(),
        Request::get(route::METRICS).body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        m.as_str()
            .unwrap()
            .contains("verifier_code_verdicts_total{verdict=\"accepted\"} 3"),
        "{m}"
    );
}

#[tokio::test]
async fn code_routes_reject_bad_input_with_named_limits() {
    let Some(state) = state() else { return };
    let item = |extra: Value| {
        let mut base = json!({"language": "python", "source_code": "print(1)", "tests": [{"stdin": "", "expected_stdout": "1"}]});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"items": [base]})
    };
    for (bad, needle) in [
        (item(json!({"time_limit_s": 1000})), "time_limit_s"),
        (item(json!({"memory_limit_mb": 1})), "memory_limit_mb"),
        (item(json!({"unknown_key": 1})), "unknown"),
        (item(json!({"language": "cobol"})), "language"),
        (item(json!({"tests": []})), "tests"),
        (item(json!({"response": "x"})), "exactly one"),
        (
            item(
                json!({"language": "c", "tests": [{"fn_name": "f", "args_json": "[]", "expected_json": "1"}]}),
            ),
            "python",
        ),
        (
            item(
                json!({"tests": [{"fn_name": "f", "args_json": "not json", "expected_json": "1"}]}),
            ),
            "args_json",
        ),
        (
            item(json!({"options": {"float_rel_tol": 2.0}})),
            "float_rel_tol",
        ),
    ] {
        let (status, v) = call(state.clone(), post(route::CODE_JUDGE, &bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
    let many = json!({"items": vec![item(json!({}))["items"][0].clone(); 300]});
    let (status, v) = call(state.clone(), post(route::CODE_JUDGE, &many)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_code_items"),
        "{v}"
    );
    for (bad, needle) in [
        (
            json!({"code": "print(1)", "language": "python", "fetch_files": vec!["a"; 300]}),
            "fetch_files",
        ),
        (
            json!({"code": "print(1)", "language": "python", "run_timeout": -1}),
            "run_timeout",
        ),
        (
            json!({"code": "print(1)", "language": "python", "memory_limit_MB": 5}),
            "memory_limit_MB",
        ),
        (
            json!({"code": "print(1)", "language": "python", "files": {"a.txt": "!!notbase64"}}),
            "base64",
        ),
    ] {
        let (status, v) = call(state.clone(), post(route::RUN_CODE, &bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
}

#[tokio::test]
async fn ping_and_disabled_judging() {
    let (status, v) = call(
        AppState::default(),
        Request::get(route::PING).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!((status, v), (StatusCode::OK, json!("pong")));
    let body = json!({"items": [{"language": "python", "source_code": "print(1)", "tests": [{"expected_stdout": "1"}]}]});
    let (status, v) = call(AppState::default(), post(route::CODE_JUDGE, &body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}

#[tokio::test]
async fn run_code_over_a_real_socket_with_files() {
    let Some(state) = state() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let client = reqwest::Client::new();
    let body = json!({"code": "print(open('data/in.txt').read().strip())", "language": "python3",
                      "files": {"data/in.txt": "aGVsbG8K"}});
    let v: Value = client
        .post(format!("http://{addr}{}", route::RUN_CODE))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(v["run_result"]["stdout"], "hello\n");
    server.abort();
}

#[tokio::test]
async fn the_typed_client_judges_code_over_a_socket() {
    let Some(state) = state() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let client = protocol::client::VerifierClient::new(&format!("http://{addr}")).unwrap();
    let req: protocol::JudgeCodeRequest = serde_json::from_value(json!({"items": [
        {"id": "a", "language": "python", "source_code": "print(input()[::-1])", "tests": [{"stdin": "abc", "expected_stdout": "cba"}]},
        {"id": "b", "language": "c", "source_code": "int main(){return 3;}", "tests": [{"expected_stdout": ""}]}
    ]}))
    .unwrap();
    let out = client.judge_code(&req).await.unwrap();
    let got: Vec<_> = out
        .results
        .iter()
        .map(|r| (r.id.as_deref(), r.verdict))
        .collect();
    assert_eq!(
        got,
        [
            (Some("a"), protocol::CodeVerdict::Accepted),
            (Some("b"), protocol::CodeVerdict::RuntimeError)
        ]
    );
    server.abort();
}
