use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use protocol::client::{ClientError, VerifierClient};
use protocol::{GradeMathRequest, GradeMathResponse, MathItem, MathVerdict, route};
use serde_json::{Value, json};
use tower::ServiceExt;
use verifier::{AppState, Limits, app};

async fn call(state: AppState, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn grades_a_batch_in_order_in_process() {
    let body = json!({"items": [
        {"id": "a", "response": "so \\boxed{7}", "ground_truth": "7"},
        {"id": "b", "response": "\\boxed{\\frac{1}{2}}", "ground_truth": "0.5"},
        {"response": "I think 7", "ground_truth": "7"},
        {"id": "d", "response": "\\boxed{3 + * )}", "ground_truth": "4"},
        {"id": "e", "response": "\\boxed{8}", "ground_truth": "7"}
    ]});
    let (status, v) = call(
        AppState::default(),
        post_json(route::MATH_GRADE, body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let resp: GradeMathResponse = serde_json::from_value(v).unwrap();
    let verdicts: Vec<_> = resp.results.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [
            MathVerdict::Correct,
            MathVerdict::Correct,
            MathVerdict::NoAnswer,
            MathVerdict::Unparseable,
            MathVerdict::Incorrect
        ]
    );
    assert_eq!(resp.results[0].id.as_deref(), Some("a"));
    assert_eq!(resp.results[2].id, None);
    assert_eq!(resp.results[1].extracted.as_deref(), Some("\\frac{1}{2}"));
    assert_eq!(resp.results[0].reward, 1.0);
}

#[tokio::test]
async fn healthz_and_unknown_routes() {
    let (status, v) = call(
        AppState::default(),
        Request::get(route::HEALTHZ).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!((status, v), (StatusCode::OK, Value::String("ok".into())));
    let (status, v) = call(
        AppState::default(),
        Request::get("/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
    let (status, v) = call(
        AppState::default(),
        Request::get(route::MATH_GRADE).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn malformed_requests_get_typed_4xx_json_errors() {
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post_json(route::MATH_GRADE, "{not json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            post_json(route::MATH_GRADE, vec![0xff, 0xfe, b'{']),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            post_json(route::MATH_GRADE, r#"{"items": 3}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            post_json(route::MATH_GRADE, r#"{"items": [], "extra": 1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            post_json(
                route::MATH_GRADE,
                r#"{"items": [{"response": "x", "ground_truth": "1", "options": {"nope": true}}]}"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            Request::post(route::MATH_GRADE)
                .body(Body::from(r#"{"items": []}"#))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (req, want_status, want_code) in cases {
        let (status, v) = call(AppState::default(), req).await;
        assert_eq!(status, want_status, "{v}");
        assert_eq!(v["error"]["code"], want_code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // 10 000 levels of nesting: rejected by type or by serde_json's recursion limit, either
    // way a typed 4xx, never a stack overflow.
    let deep = format!(
        "{{\"items\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for body in [deep, "[".repeat(10_000)] {
        let (status, v) = call(AppState::default(), post_json(route::MATH_GRADE, body)).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{status} {v}"
        );
        assert!(v["error"]["code"].is_string(), "{v}");
    }
}

#[tokio::test]
async fn limits_answer_413_and_422() {
    let state = AppState::new(
        Limits {
            max_body_bytes: 1024,
            max_batch_items: 2,
            ..Limits::default()
        },
        None,
    );
    let big = json!({"items": [{"response": "x".repeat(4096), "ground_truth": "1"}]}).to_string();
    let (status, v) = call(state.clone(), post_json(route::MATH_GRADE, big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    let three = json!({"items": [
        {"response": "1", "ground_truth": "1"}, {"response": "1", "ground_truth": "1"}, {"response": "1", "ground_truth": "1"}
    ]})
    .to_string();
    let (status, v) = call(state, post_json(route::MATH_GRADE, three)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_batch_items"),
        "{v}"
    );
}

#[tokio::test]
async fn typed_client_over_a_real_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(AppState::default())).await });
    let client = VerifierClient::new(&format!("http://{addr}")).unwrap();
    client.healthz().await.unwrap();
    let req = GradeMathRequest {
        items: vec![
            MathItem {
                id: Some("x".into()),
                response: "\\boxed{1,000}".into(),
                ground_truth: "1000".into(),
                options: None,
            },
            MathItem {
                id: None,
                response: "\\boxed{3}".into(),
                ground_truth: "$4$".into(),
                options: None,
            },
        ],
    };
    let out = client.grade_math(&req).await.unwrap();
    assert_eq!(out.results.len(), 2);
    assert!(out.results[0].correct && !out.results[1].correct);

    // Raw HTTP: malformed JSON is a 400 with the JSON error shape, and the server stays up.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{addr}{}", route::MATH_GRADE))
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    client.healthz().await.unwrap();

    // A 4xx is not retried: the client reports it at once.
    let bad = GradeMathRequest { items: vec![] };
    let limited = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let limited_addr = limited.local_addr().unwrap();
    let state = AppState::new(
        Limits {
            max_batch_items: 0,
            ..Limits::default()
        },
        None,
    );
    let limited_server = tokio::spawn(async move { axum::serve(limited, app(state)).await });
    let err = VerifierClient::new(&format!("http://{limited_addr}"))
        .unwrap()
        .grade_math(&bad)
        .await;
    assert!(err.is_ok(), "an empty batch is within any limit");
    let one = GradeMathRequest {
        items: req.items[..1].to_vec(),
    };
    let err = VerifierClient::new(&format!("http://{limited_addr}"))
        .unwrap()
        .grade_math(&one)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 422, .. }),
        "{err}"
    );
    server.abort();
    limited_server.abort();
}

fn grade_req(auth: Option<&str>) -> Request<Body> {
    let mut b = Request::post(route::MATH_GRADE).header("content-type", "application/json");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(Body::from(
        r#"{"items": [{"response": "\\boxed{2}", "ground_truth": "2"}]}"#,
    ))
    .unwrap()
}

#[tokio::test]
async fn bearer_auth_guards_the_api_but_not_the_probes() {
    let state = AppState::new(
        Limits::default(),
        Some(verifier::http::Tokens::parse("s3cret\nother\n")),
    );
    let resp = app(state.clone()).oneshot(grade_req(None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    for bad in ["Bearer wrong", "Bearer s3cre", "Basic s3cret", "s3cret"] {
        let (status, v) = call(state.clone(), grade_req(Some(bad))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(v["error"]["code"], "unauthorized");
    }
    for good in ["Bearer s3cret", "Bearer other"] {
        let (status, _) = call(state.clone(), grade_req(Some(good))).await;
        assert_eq!(status, StatusCode::OK, "{good}");
    }
    let (status, _) = call(
        state,
        Request::get(route::HEALTHZ).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn full_queue_gets_429_and_a_slow_queue_504() {
    let limits = Limits {
        max_concurrency: 1,
        max_queue: 0,
        ..Limits::default()
    };
    let state = AppState::new(limits, None);
    let held = state.cpu.acquire().await.unwrap(); // the only permit is busy
    let resp = app(state.clone()).oneshot(grade_req(None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    drop(held);
    let (status, _) = call(state, grade_req(None)).await;
    assert_eq!(status, StatusCode::OK, "served once the permit is free");

    let limits = Limits {
        max_concurrency: 1,
        max_queue: 4,
        request_timeout: std::time::Duration::from_millis(100),
        ..Limits::default()
    };
    let state = AppState::new(limits, None);
    let _held = state.cpu.acquire().await.unwrap();
    let (status, v) = call(state.clone(), grade_req(None)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(v["error"]["code"], "deadline_exceeded");
}

#[tokio::test]
async fn request_ids_metrics_readiness_and_openapi() {
    let state = AppState::default();
    let resp = app(state.clone()).oneshot(grade_req(None)).await.unwrap();
    assert!(!resp.headers()["x-request-id"].is_empty());
    let mut req = grade_req(None);
    req.headers_mut()
        .insert("x-request-id", "abc-123".parse().unwrap());
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");

    let (status, v) = call(
        state.clone(),
        Request::get(route::METRICS).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(
        text.contains("verifier_requests_total{route=\"/v1/math/grade\",status=\"200\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("verifier_math_verdicts_total{verdict=\"correct\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("verifier_request_duration_seconds_count{route=\"/v1/math/grade\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("verifier_queue_depth 0") && text.contains("verifier_cpu_work_in_flight 0")
    );

    let (status, v) = call(
        state.clone(),
        Request::get(route::READYZ).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!((status, v), (StatusCode::OK, Value::String("ready".into())));
    state.lifecycle.start_draining();
    let (status, _) = call(
        state.clone(),
        Request::get(route::READYZ).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, v) = call(state, grade_req(None)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );

    let (status, doc) = call(
        AppState::default(),
        Request::get(route::OPENAPI).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        route::HEALTHZ,
        route::READYZ,
        route::METRICS,
        route::OPENAPI,
        route::MATH_GRADE,
        route::CODE_JUDGE,
        route::RUN_CODE,
        route::PING,
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let state = AppState::new(
        Limits {
            max_concurrency: 1,
            ..Limits::default()
        },
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lifecycle = state.lifecycle.clone();
    let serve = axum::serve(listener, app(state.clone())).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
        lifecycle.start_draining();
    });
    let server = tokio::spawn(std::future::IntoFuture::into_future(serve));
    // Hold the only permit so the request is in flight (queued) when shutdown begins.
    let held = state.cpu.acquire().await.unwrap();
    let client = VerifierClient::new(&format!("http://{addr}")).unwrap();
    let req = GradeMathRequest {
        items: vec![MathItem {
            id: None,
            response: "\\boxed{5}".into(),
            ground_truth: "5".into(),
            options: None,
        }],
    };
    let in_flight = tokio::spawn(async move { client.grade_math(&req).await });
    for _ in 0..100 {
        if state.cpu.queued() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        state.cpu.queued(),
        1,
        "the request is waiting inside the server"
    );
    stop_tx.send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    drop(held);
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), in_flight)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        out.results[0].correct,
        "the in-flight request finished after shutdown began"
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn client_spreads_over_replicas_and_fails_over() {
    let mut addrs = Vec::new();
    let mut states = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let state = AppState::default();
        states.push(state.clone());
        servers.push(tokio::spawn(async move {
            axum::serve(listener, app(state)).await
        }));
    }
    // A third "replica" that is down: a port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let urls = format!("http://{},http://{},http://{dead}", addrs[0], addrs[1]);
    let policy = protocol::client::RetryPolicy {
        base_delay: std::time::Duration::from_millis(5),
        ..Default::default()
    };
    let client = VerifierClient::with_retry(&urls, policy).unwrap();
    let req = GradeMathRequest {
        items: vec![MathItem {
            id: None,
            response: "\\boxed{1}".into(),
            ground_truth: "1".into(),
            options: None,
        }],
    };
    for _ in 0..9 {
        assert!(client.grade_math(&req).await.unwrap().results[0].correct);
    }
    let served: Vec<usize> = states
        .iter()
        .map(|s| {
            let text = s.metrics.render(0, 0);
            text.lines()
                .find(|l| {
                    l.starts_with(
                        "verifier_requests_total{route=\"/v1/math/grade\",status=\"200\"}",
                    )
                })
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(
        served.iter().sum::<usize>(),
        9,
        "every request served despite the dead replica"
    );
    assert!(
        served.iter().all(|&n| n >= 3),
        "load spread over the live replicas: {served:?}"
    );
    for s in servers {
        s.abort();
    }
}

#[tokio::test]
async fn option_ranges_are_enforced() {
    // 10^(2^32) would be computed for a float rounding of 4e9 places: refused with 422.
    let body = r#"{"items": [{"response": "x", "ground_truth": "1", "options": {"float_rounding": 4000000000}}]}"#;
    let (status, v) = call(AppState::default(), post_json(route::MATH_GRADE, body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("items[0].options.float_rounding"),
        "{v}"
    );
    let body = r#"{"items": [{"response": "\\boxed{1}", "ground_truth": "1", "options": {"float_rounding": 64}}]}"#;
    let (status, _) = call(AppState::default(), post_json(route::MATH_GRADE, body)).await;
    assert_eq!(status, StatusCode::OK);
}
