//! Fuzzes request decoding: any bytes, decoded as each route's request and validated, must
//! give a value or an error, never a panic (the HTTP layer answers those errors with 4xx).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::sandbox_fusion::RunCodeRequest;
use protocol::{GradeMathRequest, JudgeCodeRequest, Language};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<GradeMathRequest>(data) {
        for item in &req.items {
            if let Some(o) = &item.options {
                let _ = o.validate();
            }
        }
    }
    if let Ok(req) = serde_json::from_slice::<JudgeCodeRequest>(data) {
        for item in &req.items {
            let _ = item.validate();
        }
    }
    if let Ok(req) = serde_json::from_slice::<RunCodeRequest>(data) {
        let _ = Language::parse(&req.language);
    }
});
