//! The OpenAPI 3.0 document served at `GET /openapi.json`: every route, request and response
//! schema, and every error status with the shared error body.

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let error = |desc: &str| json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}});
    let plain = |desc: &str| json!({"description": desc, "content": {"text/plain": {"schema": {"type": "string"}}}});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "RLVR verifier",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Grades math answers for reinforcement-learning rewards. Wrong answers are data (200 with a verdict); 4xx means a bad request, 5xx a verifier failure."
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
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "ApiError": {"type": "object", "additionalProperties": false, "required": ["error"], "properties": {
                    "error": {"type": "object", "additionalProperties": false, "required": ["code", "message"], "properties": {
                        "code": {"type": "string", "enum": ["bad_request", "unauthorized", "not_found", "method_not_allowed", "payload_too_large", "unprocessable", "too_many_requests", "unavailable", "deadline_exceeded", "internal"]},
                        "message": {"type": "string"}}}}},
                "GradeMathRequest": {"type": "object", "additionalProperties": false, "required": ["items"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/MathItem"}}}},
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
                    "elapsed_us": {"type": "integer", "minimum": 0}}}
            }
        }
    })
}
