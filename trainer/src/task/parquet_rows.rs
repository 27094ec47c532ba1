//! Parquet prompt files (verl's `*.parquet`) read as JSON objects, one per row, so that one
//! row parser serves both file formats. Only the columns the task reads are converted
//! ([`COLUMNS`]); the rest may hold any type (images, say) and are never decoded.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

/// The columns a problem is built from (math rows and the code layouts of `code_rows`).
pub(super) const COLUMNS: [&str; 17] = [
    "prompt",
    "reward_model",
    "ground_truth",
    "answer",
    "id",
    "data_source",
    "ability",
    "input_output",
    "test",
    "entry_point",
    "test_list",
    "test_imports",
    "test_setup_code",
    "language",
    "time_limit_s",
    "memory_limit_mb",
    "metadata",
];

/// Reading failures.
#[derive(Debug, thiserror::Error)]
pub(super) enum ParquetRowsError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not Parquet, corrupt, or an unsupported codec.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Decoding a record batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A column of a type a prompt row cannot have.
    #[error("column {column}: unsupported type {data_type}")]
    Type {
        /// Column name.
        column: String,
        /// Its Arrow type.
        data_type: String,
    },
}

/// Every row of `path` as `(1-based row number, object of the known columns)`.
pub(super) fn read(path: &Path) -> Result<Vec<(usize, Value)>, ParquetRowsError> {
    let file = std::fs::File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let roots: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| COLUMNS.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let mut rows = Vec::new();
    for batch in builder.with_projection(mask).build()? {
        append_rows(&batch?, &mut rows)?;
    }
    Ok(rows)
}

fn append_rows(
    batch: &RecordBatch,
    rows: &mut Vec<(usize, Value)>,
) -> Result<(), ParquetRowsError> {
    let schema = batch.schema();
    for i in 0..batch.num_rows() {
        let mut obj = serde_json::Map::new();
        for (field, col) in schema.fields().iter().zip(batch.columns()) {
            obj.insert(
                field.name().clone(),
                value_at(field.name(), col.as_ref(), i)?,
            );
        }
        rows.push((rows.len() + 1, Value::Object(obj)));
    }
    Ok(())
}

/// Row `i` of `col` as JSON: strings, integers, floats, booleans, lists and structs (nested
/// freely); nulls as `null`.
fn value_at(name: &str, col: &dyn Array, i: usize) -> Result<Value, ParquetRowsError> {
    if col.is_null(i) {
        return Ok(Value::Null);
    }
    let list = |values: &dyn Array| -> Result<Value, ParquetRowsError> {
        (0..values.len())
            .map(|j| value_at(name, values, j))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    };
    Ok(match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(i).into(),
        DataType::LargeUtf8 => col.as_string::<i64>().value(i).into(),
        DataType::Utf8View => col.as_string_view().value(i).into(),
        DataType::Boolean => col.as_boolean().value(i).into(),
        DataType::Int8 => col.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => col.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => f64::from(col.as_primitive::<Float32Type>().value(i)).into(),
        DataType::Float64 => col.as_primitive::<Float64Type>().value(i).into(),
        DataType::List(_) => list(col.as_list::<i32>().value(i).as_ref())?,
        DataType::LargeList(_) => list(col.as_list::<i64>().value(i).as_ref())?,
        DataType::Struct(fields) => {
            let s = col.as_struct();
            let mut obj = serde_json::Map::new();
            for (f, c) in fields.iter().zip(s.columns()) {
                obj.insert(f.name().clone(), value_at(name, c.as_ref(), i)?);
            }
            Value::Object(obj)
        }
        other => {
            return Err(ParquetRowsError::Type {
                column: name.to_string(),
                data_type: other.to_string(),
            });
        }
    })
}
