//! `steer-coupled`'s contributions, weights and predicted change against golden numbers from
//! an independent NumPy computation (`golden/steer_coupled.py`: a direct double sum over
//! position pairs, float64), embedded below. When `python3` (or `/usr/bin/python3`) with NumPy
//! is present the script is rerun and its output compared with the embedded copy, inputs
//! included; otherwise that half prints SKIP.

use candle_core::{Device, Tensor};
use trainer::algo::WeightMapping;
use trainer::algo::coupled::HeadInputs;
use trainer::algo::steer_coupled::{
    CoupledTokens, MicroCells, Normaliser, SteerCoupledConfig, batch_weights, predicted_change,
};

const TAU: f64 = 0.8;
const TOP_K: usize = 3;
const LR: f64 = 1e-3;
const W: [[f32; 3]; 6] = [
    [0.9, -0.3, 0.4],
    [-0.5, 1.1, 0.2],
    [0.3, 0.3, -0.8],
    [1.2, 0.5, 0.1],
    [-0.7, -0.9, 0.6],
    [0.1, -0.2, 1.3],
];

/// One micro-batch of the golden case: `rows × cols` cells.
struct Micro {
    rows: usize,
    cols: usize,
    h: Vec<[f32; 3]>,
    y: Vec<u32>,
    mask: Vec<bool>,
    adv: Vec<f32>,
}

fn micros() -> Vec<Micro> {
    vec![
        Micro {
            rows: 2,
            cols: 3,
            h: vec![
                [0.0, 0.0, 0.0],
                [0.8, -0.4, 0.3],
                [0.2, 1.0, -0.6],
                [0.0, 0.0, 0.0],
                [-0.5, 0.7, 0.9],
                [0.3, 0.3, 0.3],
            ],
            y: vec![0, 3, 1, 0, 4, 2],
            mask: vec![false, true, true, false, true, false],
            adv: vec![1.2, -0.7],
        },
        Micro {
            rows: 1,
            cols: 3,
            h: vec![[1.1, 0.2, -0.3], [-0.2, -0.8, 0.5], [0.6, 0.4, 0.9]],
            y: vec![5, 2, 3],
            mask: vec![true, true, true],
            adv: vec![0.4],
        },
    ]
}

// Output of `/usr/bin/python3 trainer/tests/golden/steer_coupled.py`, at the valid cells in
// batch order.
const CONTRIBUTION: [f64; 6] = [
    -0.326_962_890_286_879_75,
    -0.049_617_457_045_991_964,
    -0.377_932_348_173_804_2,
    0.289_683_299_707_279,
    0.213_799_112_200_737_86,
    -0.050_456_390_639_391_197,
];
const W_EXP_MICRO: [f64; 6] = [
    0.824_441_142_267_083_5,
    0.971_129_200_291_298_9,
    0.8,
    0.8,
    0.848_156_736_707_570_6,
    0.961_878_971_228_362_9,
];
const W_EXP_BATCH: [f64; 6] = [
    0.824_441_142_267_083_5,
    0.971_129_200_291_298_9,
    0.8,
    0.842_789_173_812_124_6,
    0.881_408_617_064_424_3,
    0.970_648_286_405_641_6,
];
const W_LIN_MICRO: [f64; 6] = [
    0.862_098_259_036_422_7,
    1.2,
    0.8,
    0.8,
    0.926_882_360_855_160_8,
    1.2,
];
const PREDICTED: f64 = -7.098_434_519_633_471e-6;

/// `|got − want| ≤ 1e-5 · max(1, |want|)` elementwise.
fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

/// The valid cells' values of every micro-batch, in batch order.
fn valid(tokens: &[CoupledTokens], ms: &[Micro], f: fn(&CoupledTokens) -> &Vec<f32>) -> Vec<f64> {
    tokens
        .iter()
        .zip(ms)
        .flat_map(|(t, m)| {
            f(t).iter()
                .zip(&m.mask)
                .filter(|&(_, &v)| v)
                .map(|(&x, _)| f64::from(x))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn run(mapping: WeightMapping, normaliser: Normaliser) -> (Vec<CoupledTokens>, Vec<Micro>) {
    let dev = Device::Cpu;
    let w = Tensor::new(&W, &dev).unwrap();
    let ms = micros();
    let heads: Vec<HeadInputs> = ms
        .iter()
        .map(|m| {
            let flat: Vec<f32> = m.h.iter().flatten().copied().collect();
            let h = Tensor::from_vec(flat, (m.rows, m.cols, 3), &dev).unwrap();
            let logits = h.broadcast_matmul(&w.t().unwrap()).unwrap();
            let y = Tensor::from_vec(m.y.clone(), (m.rows, m.cols), &dev).unwrap();
            HeadInputs::at_valid(&h, &logits, &y, &m.mask, TAU, TOP_K).unwrap()
        })
        .collect();
    let adv: Vec<Vec<f32>> = ms
        .iter()
        .map(|m| {
            (0..m.rows * m.cols)
                .map(|c| if m.mask[c] { m.adv[c / m.cols] } else { 0.0 })
                .collect()
        })
        .collect();
    let cells: Vec<MicroCells<'_>> = ms
        .iter()
        .zip(&adv)
        .map(|(m, a)| MicroCells {
            mask: &m.mask,
            adv: a,
        })
        .collect();
    let cfg = SteerCoupledConfig {
        mapping,
        normaliser,
        top_k: TOP_K,
        ..SteerCoupledConfig::default()
    };
    let tokens = batch_weights(&heads, &cells, &w, TAU, &cfg).unwrap();
    (tokens, ms)
}

#[test]
fn contributions_weights_and_prediction_match_numpy() {
    let exp = WeightMapping::Exponential { lambda_min: 0.8 };
    let lin = WeightMapping::Linear {
        w_min: 0.8,
        w_max: 1.2,
    };
    let (micro, ms) = run(exp, Normaliser::MicroBatch);
    close(
        "contribution",
        &valid(&micro, &ms, |t| &t.contribution),
        &CONTRIBUTION,
    );
    close(
        "w_exp_micro",
        &valid(&micro, &ms, |t| &t.weights),
        &W_EXP_MICRO,
    );
    // Padding gets weight 0 and no contribution.
    assert_eq!((micro[0].weights[5], micro[0].contribution[5]), (0.0, 0.0));
    let masks: Vec<&[bool]> = ms.iter().map(|m| m.mask.as_slice()).collect();
    let p = predicted_change(&micro, &masks, LR);
    assert!(
        (p - PREDICTED).abs() <= 1e-5 * PREDICTED.abs(),
        "{p} vs {PREDICTED}"
    );
    let (batch, _) = run(exp, Normaliser::Batch);
    close(
        "w_exp_batch",
        &valid(&batch, &ms, |t| &t.weights),
        &W_EXP_BATCH,
    );
    let (linear, _) = run(lin, Normaliser::MicroBatch);
    close(
        "w_lin_micro",
        &valid(&linear, &ms, |t| &t.weights),
        &W_LIN_MICRO,
    );
}

/// The interpreter with NumPy, if any.
fn python_with_numpy() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", "import numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn embedded_numbers_are_the_scripts_output() {
    let Some(py) = python_with_numpy() else {
        println!("SKIP: no python3 with numpy; the embedded golden numbers were not re-derived");
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/steer_coupled.py");
    let out = std::process::Command::new(py).arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let floats = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    close("contribution", &floats("contribution"), &CONTRIBUTION);
    close("w_exp_micro", &floats("w_exp_micro"), &W_EXP_MICRO);
    close("w_exp_batch", &floats("w_exp_batch"), &W_EXP_BATCH);
    close("w_lin_micro", &floats("w_lin_micro"), &W_LIN_MICRO);
    let p = v["predicted"].as_f64().unwrap();
    assert!((p - PREDICTED).abs() <= 1e-9 * PREDICTED.abs(), "{p}");
    // The script's inputs are this file's.
    let i = &v["inputs"];
    assert_eq!(i["tau"].as_f64(), Some(TAU));
    assert_eq!(i["top_k"].as_u64(), Some(TOP_K as u64));
    assert_eq!(i["lr"].as_f64(), Some(LR));
    let w: Vec<Vec<f64>> = serde_json::from_value(i["w"].clone()).unwrap();
    for (row, want) in w.iter().zip(&W) {
        for (a, b) in row.iter().zip(want) {
            assert!((a - f64::from(*b)).abs() < 1e-7);
        }
    }
    for (m, want) in i["micros"].as_array().unwrap().iter().zip(micros()) {
        assert_eq!(m["rows"].as_u64(), Some(want.rows as u64));
        assert_eq!(m["cols"].as_u64(), Some(want.cols as u64));
        let y: Vec<u32> = serde_json::from_value(m["y"].clone()).unwrap();
        let mask: Vec<bool> = serde_json::from_value(m["mask"].clone()).unwrap();
        let adv: Vec<f64> = serde_json::from_value(m["adv"].clone()).unwrap();
        let h: Vec<Vec<f64>> = serde_json::from_value(m["h"].clone()).unwrap();
        assert_eq!((y, mask), (want.y, want.mask));
        for (a, b) in adv.iter().zip(&want.adv) {
            assert!((a - f64::from(*b)).abs() < 1e-7);
        }
        for (a, b) in h.iter().flatten().zip(want.h.iter().flatten()) {
            assert!((a - f64::from(*b)).abs() < 1e-7);
        }
    }
}
