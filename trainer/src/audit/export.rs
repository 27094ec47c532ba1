//! Exports of a run's rollouts: JSON Lines (one object per rollout) and Parquet (one row per
//! rollout, typed columns, Snappy-compressed).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::store::RolloutView;

/// Export failures.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the output failed.
    #[error("export: {0}")]
    Io(#[from] std::io::Error),
    /// JSON encoding failed.
    #[error("export: {0}")]
    Json(#[from] serde_json::Error),
    /// Parquet encoding failed.
    #[error("export: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building the Arrow batch failed.
    #[error("export: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Writes one JSON object per rollout.
pub fn write_jsonl<W: Write>(rows: &[RolloutView], out: &mut W) -> Result<(), ExportError> {
    for r in rows {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Writes a Parquet file with one row per rollout.
pub fn write_parquet(rows: &[RolloutView], path: &Path) -> Result<(), ExportError> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let schema = Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        text("prompt_id", false),
        text("data_source", false),
        Field::new("sample_idx", DataType::Int64, false),
        text("prompt", false),
        text("response", false),
        text("ground_truth", false),
        text("extracted", true),
        text("verdict", false),
        Field::new("reward", DataType::Float64, false),
        Field::new("advantage", DataType::Float64, false),
        Field::new("num_tokens", DataType::Int64, false),
        Field::new("mean_entropy", DataType::Float64, false),
        text("verifier_result", false),
    ]));
    let strings = |f: fn(&RolloutView) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.step))),
        strings(|r| &r.prompt_id),
        strings(|r| &r.data_source),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.sample_idx),
        )),
        strings(|r| &r.prompt),
        strings(|r| &r.response),
        strings(|r| &r.ground_truth),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| r.extracted.as_deref())
                .collect::<Vec<_>>(),
        )),
        strings(|r| &r.verdict),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.reward),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.advantage),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.num_tokens),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.mean_entropy),
        )),
        strings(|r| &r.verifier_result),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    let file = std::fs::File::create(path)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn view(step: i64) -> RolloutView {
        RolloutView {
            step,
            prompt_id: "p".into(),
            data_source: "arith".into(),
            sample_idx: 1,
            prompt: "1+1=".into(),
            response: "\\boxed{2}".into(),
            ground_truth: "2".into(),
            extracted: if step == 0 { None } else { Some("2".into()) },
            verdict: "correct".into(),
            reward: 1.0,
            advantage: 0.5,
            num_tokens: 10,
            mean_entropy: 0.1,
            verifier_result: "{}".into(),
        }
    }

    #[test]
    fn parquet_and_jsonl_round_trip_row_counts() {
        let rows = vec![view(0), view(1), view(2)];
        let path = std::env::temp_dir().join(format!("export-test-{}.parquet", std::process::id()));
        write_parquet(&rows, &path).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
        assert_eq!(
            reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .num_columns(),
            14
        );
        std::fs::remove_file(&path).ok();
        let mut buf = Vec::new();
        write_jsonl(&rows, &mut buf).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["extracted"], serde_json::Value::Null);
        assert_eq!(lines[2]["step"], 2);
    }
}
