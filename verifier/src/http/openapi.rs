//! The OpenAPI 3.0 document served at `GET /openapi.json`: every route (math, code,
//! SandboxFusion's `/run_code` and `/v1/ping`), request and response schema, and every error
//! status with the shared error body.

use serde_json::{Value, json};

/// The document, with the batch and size limits in force stated in the schemas.
pub fn document(limits: &super::Limits) -> Value {
    let max_math_items = limits.max_batch_items;
    let max_code_items = limits.max_code_items;
    let max_tests = limits.max_tests_per_item;
    let max_code = limits.max_code_bytes;
    let error = |desc: &str| json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}});
    let plain = |desc: &str| json!({"description": desc, "content": {"text/plain": {"schema": {"type": "string"}}}});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "RLVR verifier",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Grades math answers and judges code for reinforcement-learning rewards. Wrong answers and failing programs are data (200 with a verdict); 4xx means a bad request, 5xx a verifier failure."
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "responses": {"200": plain("ok")}}},
            "/readyz": {"get": {"summary": "Readiness (503 while starting or draining)", "operationId": "readyz",
                "responses": {"200": plain("ready"), "503": error("not ready or shutting down")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics", "responses": {"200": plain("text exposition format")}}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/v1/math/grade": {"post": {
                "summary": "Grade a batch of math responses against gold answers (results in input order)",
                "operationId": "grade_math",
                "security": [{"bearer": []}, {}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GradeMathRequest"}}}},
                "responses": {
                    "200": {"description": "One result per item", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GradeMathResponse"}}}},
                    "400": error("malformed JSON, invalid UTF-8 or wrong content type"),
                    "401": error("missing or invalid bearer token"),
                    "413": error("request body over the size limit"),
                    "415": error("unsupported media type"),
                    "422": error("schema violation or a named limit exceeded (unknown fields are rejected)"),
                    "429": error("grading queue full; retry with backoff"),
                    "500": error("the verifier failed"),
                    "503": error("shutting down"),
                    "504": error("per-request deadline exceeded")
                }
            }},
            "/v1/code/judge": {"post": {
                "summary": "Judge a batch of programs against their tests in a sandbox (results in input order)",
                "operationId": "judge_code",
                "security": [{"bearer": []}, {}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JudgeCodeRequest"}}}},
                "responses": {
                    "200": {"description": "One result per item", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JudgeCodeResponse"}}}},
                    "400": error("malformed JSON, invalid UTF-8 or wrong content type"),
                    "401": error("missing or invalid bearer token"),
                    "413": error("request body over the size limit"),
                    "415": error("unsupported media type"),
                    "422": error("schema violation or a named limit exceeded (max_code_items, max_code_bytes, max_tests_per_item, max_stdin_bytes)"),
                    "429": error("queue full; retry with backoff"),
                    "500": error("the verifier failed"),
                    "503": error("shutting down, or code judging not enabled"),
                    "504": error("per-request deadline exceeded")
                }
            }},
            "/run_code": {"post": {
                "summary": "SandboxFusion-compatible: compile (where needed) and run one program once",
                "operationId": "run_code",
                "security": [{"bearer": []}, {}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunCodeRequest"}}}},
                "responses": {
                    "200": {"description": "SandboxFusion's RunCodeResponse (plus verdict and backend)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunCodeResponse"}}}},
                    "400": error("malformed JSON, invalid UTF-8 or wrong content type"),
                    "401": error("missing or invalid bearer token"),
                    "413": error("request body over the size limit"),
                    "415": error("unsupported media type"),
                    "422": error("schema violation or a named limit exceeded"),
                    "429": error("queue full; retry with backoff"),
                    "500": error("the verifier failed"),
                    "503": error("shutting down, or code judging not enabled"),
                    "504": error("per-request deadline exceeded")
                }
            }},
            "/v1/openrlhf/reward": {"post": {
                "summary": "OpenRLHF's remote reward protocol (--reward.remote_url): math rewards with the default grading options",
                "operationId": "openrlhf_reward",
                "security": [{"bearer": []}, {}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenRlhfRewardRequest"}}}},
                "responses": {
                    "200": {"description": "One reward per query", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenRlhfRewardResponse"}}}},
                    "400": error("malformed JSON, invalid UTF-8 or wrong content type"),
                    "401": error("missing or invalid bearer token"),
                    "413": error("request body over the size limit"),
                    "415": error("unsupported media type"),
                    "422": error("schema violation (labels or prompts not one per query) or a named limit exceeded"),
                    "429": error("grading queue full; retry with backoff"),
                    "500": error("the verifier failed"),
                    "503": error("shutting down"),
                    "504": error("per-request deadline exceeded")
                }
            }},
            "/v1/ping": {"get": {"summary": "SandboxFusion-compatible liveness", "operationId": "ping",
                "responses": {"200": {"description": "pong", "content": {"application/json": {"schema": {"type": "string", "enum": ["pong"]}}}}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "ApiError": {"type": "object", "additionalProperties": false, "required": ["error"], "properties": {
                    "error": {"type": "object", "additionalProperties": false, "required": ["code", "message"], "properties": {
                        "code": {"type": "string", "enum": ["bad_request", "unauthorized", "not_found", "method_not_allowed", "payload_too_large", "unprocessable", "too_many_requests", "unavailable", "deadline_exceeded", "internal"]},
                        "message": {"type": "string"}}}}},
                "OpenRlhfRewardRequest": {"type": "object", "additionalProperties": false, "required": ["query"], "properties": {
                    "query": {"type": "array", "maxItems": max_math_items, "items": {"type": "string"}, "description": "prompt and response decoded together"},
                    "prompts": {"type": "array", "items": {"type": "string"}, "description": "one per query, or empty (then the whole query is the response)"},
                    "labels": {"type": "array", "items": {"type": "string"}, "description": "the gold answers, one per query"}}},
                "OpenRlhfRewardResponse": {"type": "object", "additionalProperties": false, "required": ["rewards", "scores", "extra_logs"], "properties": {
                    "rewards": {"type": "array", "items": {"type": "number"}, "description": "1.0 correct, else 0.0"},
                    "scores": {"type": "array", "items": {"type": "number"}, "description": "the same as rewards"},
                    "extra_logs": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}, "description": "per-sample 0/1 indicators: correct, no_answer, unparseable, limit_exceeded"}}},
                "GradeMathRequest": {"type": "object", "additionalProperties": false, "required": ["items"], "properties": {
                    "items": {"type": "array", "maxItems": max_math_items, "items": {"$ref": "#/components/schemas/MathItem"}}}},
                "MathItem": {"type": "object", "additionalProperties": false, "required": ["response", "ground_truth"], "properties": {
                    "id": {"type": "string", "nullable": true},
                    "response": {"type": "string", "description": "the model's full response"},
                    "ground_truth": {"type": "string", "description": "the gold answer; a wrapped one ($…$, \\boxed{}) is extracted first"},
                    "options": {"allOf": [{"$ref": "#/components/schemas/MathOptions"}], "nullable": true}}},
                "MathOptions": {"type": "object", "additionalProperties": false, "properties": {
                    "extraction": {"type": "array", "items": {"type": "string", "enum": ["latex", "expr", "string"]}, "default": ["latex", "expr"]},
                    "gold_extraction": {"type": "array", "items": {"type": "string", "enum": ["latex", "expr", "string"]}, "nullable": true},
                    "latex_boxed_match_priority": {"type": "integer", "format": "int32", "minimum": -2147483648, "maximum": 2147483647, "default": 0},
                    "float_rounding": {"type": "integer", "minimum": 0, "maximum": 64, "default": 6},
                    "strict": {"type": "boolean", "default": true},
                    "allow_set_relation_comp": {"type": "boolean", "default": false},
                    "require_boxed": {"type": "boolean", "default": true},
                    "strings": {"type": "array", "items": {"type": "string"}, "maxItems": 64, "default": []},
                    "lowercase": {"type": "boolean", "default": true}}},
                "GradeMathResponse": {"type": "object", "additionalProperties": false, "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/MathResult"}}}},
                "MathResult": {"type": "object", "additionalProperties": false,
                    "required": ["correct", "reward", "verdict", "extracted", "elapsed_us"], "properties": {
                    "id": {"type": "string"},
                    "correct": {"type": "boolean"},
                    "reward": {"type": "number"},
                    "verdict": {"type": "string", "enum": ["correct", "incorrect", "no_answer", "unparseable", "limit_exceeded"]},
                    "extracted": {"type": "string", "nullable": true},
                    "elapsed_us": {"type": "integer", "minimum": 0}}},
                "JudgeCodeRequest": {"type": "object", "additionalProperties": false, "required": ["items"], "properties": {
                    "items": {"type": "array", "maxItems": max_code_items, "items": {"$ref": "#/components/schemas/CodeItem"}}}},
                "CodeItem": {"type": "object", "additionalProperties": false, "required": ["language", "tests"],
                    "allOf": [
                        {"oneOf": [
                            {"required": ["source_code"], "properties": {"source_code": {"type": "string"}}},
                            {"required": ["response"], "properties": {"response": {"type": "string"}}}]},
                        {"anyOf": [
                            {"properties": {"language": {"enum": ["python", "python3", "py"]}}},
                            {"properties": {"tests": {"items": {"oneOf": [{"$ref": "#/components/schemas/IoTest"}, {"$ref": "#/components/schemas/AssertTest"}]}}}}]}],
                    "properties": {
                    "id": {"type": "string", "nullable": true},
                    "language": {"type": "string", "pattern": "^[A-Za-z0-9_+#-]{1,32}$", "description": "a language of the verifier's table (sandbox-images/languages.toml): SandboxFusion's names (python, cpp, nodejs, go, java, junit, jest, go_test, pytest, R, D_ut, …), c, and aliases; unknown names answer 422"},
                    "source_code": {"type": "string", "nullable": true, "maxLength": max_code, "description": "the program (exactly one of source_code and response)"},
                    "response": {"type": "string", "nullable": true, "maxLength": max_code, "description": "a model response; its last fenced code block is the program"},
                    "tests": {"type": "array", "minItems": 1, "maxItems": max_tests, "items": {"$ref": "#/components/schemas/CodeTest"}},
                    "time_limit_s": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "maximum": 60, "default": 10},
                    "memory_limit_mb": {"type": "integer", "minimum": 16, "maximum": 8192, "default": 1024},
                    "backend": {"type": "string", "enum": ["auto", "wasm", "ns"], "default": "auto"},
                    "options": {"allOf": [{"$ref": "#/components/schemas/CodeOptions"}], "nullable": true},
                    "expected_verdict": {"allOf": [{"$ref": "#/components/schemas/CodeVerdict"}], "nullable": true, "description": "label of a dataset case; ignored"},
                    "alt_verdicts": {"type": "array", "items": {"$ref": "#/components/schemas/CodeVerdict"}, "nullable": true, "description": "ignored"},
                    "source": {"type": "string", "nullable": true, "description": "ignored"},
                    "notes": {"type": "string", "nullable": true, "description": "ignored"}}},
                "CodeTest": {"oneOf": [
                    {"$ref": "#/components/schemas/IoTest"},
                    {"$ref": "#/components/schemas/AssertTest"},
                    {"$ref": "#/components/schemas/CallTest"}]},
                "IoTest": {"type": "object", "additionalProperties": false, "required": ["expected_stdout"], "properties": {
                    "stdin": {"type": "string", "default": ""}, "expected_stdout": {"type": "string"}}},
                "AssertTest": {"type": "object", "additionalProperties": false, "required": ["assert_code"], "description": "test code appended to the program: Python asserts (with a sentinel), a MultiPL-E test, or a test-framework suite (pytest, junit, jest, go_test)", "properties": {
                    "assert_code": {"type": "string"}}},
                "CallTest": {"type": "object", "additionalProperties": false, "required": ["fn_name", "args_json", "expected_json"], "description": "python only", "properties": {
                    "fn_name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"},
                    "args_json": {"type": "string", "description": "JSON text of an array (positional) or object (keyword) of arguments; other text is a 422"},
                    "expected_json": {"type": "string", "description": "JSON text of the expected result; other text is a 422"}}},
                "CodeOptions": {"type": "object", "additionalProperties": false, "properties": {
                    "reward": {"type": "string", "enum": ["binary", "pass_rate"], "default": "binary"},
                    "stop_on_first_failure": {"type": "boolean", "default": false},
                    "float_rel_tol": {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMaximum": true, "nullable": true}}},
                "CodeVerdict": {"type": "string", "enum": ["accepted", "wrong_answer", "time_limit", "memory_limit", "output_limit", "runtime_error", "compile_error", "sandbox_error"]},
                "RunReport": {"type": "object", "required": ["time_ms", "stdout_head", "stderr_head", "stdout_truncated", "stderr_truncated"], "properties": {
                    "exit_code": {"type": "integer"}, "signal": {"type": "integer"},
                    "time_ms": {"type": "number"}, "cpu_ms": {"type": "number"}, "memory_kb": {"type": "integer", "minimum": 0},
                    "stdout_head": {"type": "string"}, "stderr_head": {"type": "string"},
                    "stdout_truncated": {"type": "boolean"}, "stderr_truncated": {"type": "boolean"}}},
                "TestResult": {"allOf": [{"$ref": "#/components/schemas/RunReport"},
                    {"type": "object", "required": ["verdict"], "properties": {"verdict": {"$ref": "#/components/schemas/CodeVerdict"}}}]},
                "CodeResult": {"type": "object", "additionalProperties": false,
                    "required": ["verdict", "reward", "passed", "total", "tests", "backend", "elapsed_us"], "properties": {
                    "id": {"type": "string"},
                    "verdict": {"$ref": "#/components/schemas/CodeVerdict"},
                    "reward": {"type": "number", "minimum": 0, "maximum": 1},
                    "passed": {"type": "integer", "minimum": 0},
                    "total": {"type": "integer", "minimum": 0},
                    "compile": {"$ref": "#/components/schemas/RunReport"},
                    "tests": {"type": "array", "items": {"$ref": "#/components/schemas/TestResult"}},
                    "backend": {"type": "string", "enum": ["wasm", "ns"]},
                    "message": {"type": "string"},
                    "fallback": {"type": "string"},
                    "elapsed_us": {"type": "integer", "minimum": 0}}},
                "JudgeCodeResponse": {"type": "object", "additionalProperties": false, "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/CodeResult"}}}},
                "RunCodeRequest": {"type": "object", "additionalProperties": false, "required": ["code", "language"], "properties": {
                    "code": {"type": "string", "maxLength": max_code},
                    "language": {"type": "string", "description": "a language of the verifier's table (SandboxFusion's names, c, aliases); others answer SandboxError"},
                    "stdin": {"type": "string", "nullable": true},
                    "compile_timeout": {"type": "number", "default": 10, "exclusiveMinimum": true, "minimum": 0, "maximum": 60},
                    "run_timeout": {"type": "number", "default": 10, "exclusiveMinimum": true, "minimum": 0, "maximum": 60},
                    "memory_limit_MB": {"anyOf": [{"type": "integer", "enum": [-1]}, {"type": "integer", "minimum": 16, "maximum": 8192}], "default": -1, "description": "-1 (1024 MiB) or 16..=8192"},
                    "files": {"type": "object", "additionalProperties": {"type": "string", "format": "byte", "nullable": true}, "description": "path relative to the working directory (no '..', no empty component) → base64 content (null: skipped); other paths answer SandboxError"},
                    "fetch_files": {"type": "array", "items": {"type": "string"}, "maxItems": 256, "description": "files to return after the run: relative to the working directory, or absolute inside the box"}}},
                "CommandRunResult": {"type": "object", "additionalProperties": false, "required": ["status"], "properties": {
                    "status": {"type": "string", "enum": ["Finished", "Error", "TimeLimitExceeded"]},
                    "execution_time": {"type": "number", "nullable": true},
                    "return_code": {"type": "integer", "nullable": true},
                    "stdout": {"type": "string", "nullable": true},
                    "stderr": {"type": "string", "nullable": true},
                    "stdout_truncated": {"type": "boolean"},
                    "stderr_truncated": {"type": "boolean"}}},
                "RunCodeResponse": {"type": "object", "additionalProperties": false,
                    "required": ["status", "message", "compile_result", "run_result", "executor_pod_name", "files"], "properties": {
                    "status": {"type": "string", "enum": ["Success", "Failed", "SandboxError"]},
                    "message": {"type": "string"},
                    "compile_result": {"allOf": [{"$ref": "#/components/schemas/CommandRunResult"}], "nullable": true},
                    "run_result": {"allOf": [{"$ref": "#/components/schemas/CommandRunResult"}], "nullable": true},
                    "executor_pod_name": {"type": "string", "nullable": true},
                    "files": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                    "files_skipped": {"type": "object", "additionalProperties": {"type": "string"}, "description": "requested files not returned, with the reason"},
                    "verdict": {"$ref": "#/components/schemas/CodeVerdict"},
                    "backend": {"type": "string", "enum": ["wasm", "ns"]}}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::route;

    #[test]
    fn every_route_the_router_serves_is_documented() {
        let doc = document(&crate::http::Limits::default());
        let paths = doc["paths"].as_object().unwrap();
        let served = [
            route::HEALTHZ,
            route::READYZ,
            route::METRICS,
            route::OPENAPI,
            route::MATH_GRADE,
            route::CODE_JUDGE,
            route::RUN_CODE,
            route::PING,
            route::OPENRLHF_REWARD,
        ];
        for r in served {
            assert!(
                paths.contains_key(r),
                "{r} missing from the OpenAPI document"
            );
        }
        assert_eq!(
            paths.len(),
            served.len(),
            "documented but not served: {paths:?}"
        );
    }
}
