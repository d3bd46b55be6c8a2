//! ItemReader content parsing (JSON, JSONL, CSV with ReaderConfig) and ItemBatcher batching.
//!
//! A Distributed Map reads its items from an object (S3 in AWS, a host store here). The executor
//! fetches the object's bytes through its host trait and hands them to [`read_items`]; this module
//! only turns bytes into JSON items the way Step Functions does, and groups them into batches when
//! the state has an `ItemBatcher`. No I/O happens here, so every rule is unit-testable.
//!
//! Behaviour that mirrors AWS:
//! - `JSON`: the object must hold a top-level JSON array; each element is an item.
//! - `JSONL`: one JSON value per line; blank lines are skipped; the object is streamed line by line.
//! - `CSV`: each row becomes an object keyed by the header, and every value is a *string* (AWS does
//!   not infer numbers or booleans from CSV). The header is the first row (`FIRST_ROW`) or given
//!   in `CSVHeaders` (`GIVEN`). Rows are streamed.
//! - `MaxItems` stops reading after that many items.
//! - Any content error is a `States.ItemReaderFailed` error whose cause names the line.

use serde_json::{Map, Value};

use crate::StatesError;
use crate::data::type_name;
use crate::error::names;

/// `ReaderConfig.InputType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    Json,
    Jsonl,
    Csv,
    /// An S3 Inventory `manifest.json`; see [`InventoryManifest`].
    Manifest,
}

impl InputType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "JSON" => Some(Self::Json),
            "JSONL" => Some(Self::Jsonl),
            "CSV" => Some(Self::Csv),
            "MANIFEST" => Some(Self::Manifest),
            _ => None,
        }
    }
}

/// Where a CSV object's column names come from (`CSVHeaderLocation` / `CSVHeaders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvHeaderLocation {
    FirstRow,
    Given(Vec<String>),
}

/// The largest `MaxItems` AWS accepts.
pub const MAX_ITEMS_LIMIT: u64 = 100_000_000;

/// The `ItemReader.ReaderConfig` object of a Distributed Map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    pub input_type: InputType,
    pub csv_header_location: CsvHeaderLocation,
    /// `MaxItems`, or the already-resolved value of `MaxItemsPath` (see [`Self::max_items_path`]).
    pub max_items: Option<u64>,
    /// `MaxItemsPath`: the executor resolves it against the state input and stores the result in
    /// `max_items` with [`Self::with_max_items`], because resolving needs the runtime input.
    pub max_items_path: Option<String>,
    /// The CSV field delimiter byte; `None` means the default comma.
    pub csv_delimiter: Option<u8>,
    /// `ManifestType` for `MANIFEST` input (e.g. `S3_INVENTORY`), kept verbatim.
    pub manifest_type: Option<String>,
}

impl ReaderConfig {
    /// Parse and check a `ReaderConfig` JSON object. The error is a message naming the field.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "ReaderConfig must be a JSON object".to_string())?;
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "InputType"
                    | "CSVHeaderLocation"
                    | "CSVHeaders"
                    | "CSVDelimiter"
                    | "MaxItems"
                    | "MaxItemsPath"
                    | "ManifestType"
            ) {
                return Err(format!("Field '{key}' is not supported in ReaderConfig"));
            }
        }
        let input_type = match obj.get("InputType") {
            None => return Err("ReaderConfig requires the field 'InputType'".into()),
            Some(Value::String(s)) => InputType::parse(s).ok_or_else(|| {
                format!("InputType '{s}' is not one of CSV, JSON, JSONL, MANIFEST")
            })?,
            Some(_) => return Err("InputType must be a string".into()),
        };
        let is_csv = input_type == InputType::Csv;
        let headers = match obj.get("CSVHeaders") {
            None => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, h) in a.iter().enumerate() {
                    match h.as_str() {
                        Some(s) => out.push(s.to_string()),
                        None => return Err(format!("CSVHeaders[{i}] must be a string")),
                    }
                }
                if out.is_empty() {
                    return Err("CSVHeaders must not be empty".into());
                }
                Some(out)
            }
            Some(_) => return Err("CSVHeaders must be an array of strings".into()),
        };
        let csv_header_location = match obj.get("CSVHeaderLocation") {
            None | Some(Value::Null) => {
                if headers.is_some() {
                    return Err("CSVHeaders requires CSVHeaderLocation GIVEN".into());
                }
                CsvHeaderLocation::FirstRow
            }
            Some(Value::String(s)) if s == "FIRST_ROW" => {
                if headers.is_some() {
                    return Err("CSVHeaders can only be used with CSVHeaderLocation GIVEN".into());
                }
                CsvHeaderLocation::FirstRow
            }
            Some(Value::String(s)) if s == "GIVEN" => match headers {
                Some(h) => CsvHeaderLocation::Given(h),
                None => return Err("CSVHeaderLocation GIVEN requires CSVHeaders".into()),
            },
            Some(_) => return Err("CSVHeaderLocation must be FIRST_ROW or GIVEN".into()),
        };
        if !is_csv && (obj.contains_key("CSVHeaderLocation") || obj.contains_key("CSVHeaders")) {
            return Err(
                "CSVHeaderLocation and CSVHeaders are only allowed with InputType CSV".into(),
            );
        }
        let csv_delimiter = match obj.get("CSVDelimiter") {
            None => None,
            Some(v) => {
                if !is_csv {
                    return Err("CSVDelimiter is only allowed with InputType CSV".into());
                }
                Some(match v.as_str() {
                    Some("COMMA") => b',',
                    Some("PIPE") => b'|',
                    Some("SEMICOLON") => b';',
                    Some("SPACE") => b' ',
                    Some("TAB") => b'\t',
                    _ => {
                        return Err(
                            "CSVDelimiter must be one of COMMA, PIPE, SEMICOLON, SPACE, TAB".into(),
                        );
                    }
                })
            }
        };
        let max_items = match obj.get("MaxItems") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_ITEMS_LIMIT => Some(n),
                _ => {
                    return Err(format!(
                        "MaxItems must be an integer between 0 and {MAX_ITEMS_LIMIT}"
                    ));
                }
            },
        };
        let max_items_path = match obj.get("MaxItemsPath") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("MaxItemsPath must be a string".into()),
        };
        if max_items.is_some() && max_items_path.is_some() {
            return Err("MaxItems and MaxItemsPath are mutually exclusive".into());
        }
        let manifest_type = match obj.get("ManifestType") {
            None => None,
            Some(Value::String(s)) if input_type == InputType::Manifest => Some(s.clone()),
            Some(Value::String(_)) => {
                return Err("ManifestType is only allowed with InputType MANIFEST".into());
            }
            Some(_) => return Err("ManifestType must be a string".into()),
        };
        Ok(Self {
            input_type,
            csv_header_location,
            max_items,
            max_items_path,
            csv_delimiter,
            manifest_type,
        })
    }

    /// A config for plain `input_type` items with no limit and default CSV settings.
    pub fn new(input_type: InputType) -> Self {
        Self {
            input_type,
            csv_header_location: CsvHeaderLocation::FirstRow,
            max_items: None,
            max_items_path: None,
            csv_delimiter: None,
            manifest_type: None,
        }
    }

    /// Set the resolved `MaxItemsPath` value (AWS treats 0 as "no limit" only for the literal
    /// default; a resolved value is used as given).
    pub fn with_max_items(mut self, n: u64) -> Self {
        self.max_items = Some(n);
        self
    }
}

fn reader_failed(cause: impl Into<String>) -> StatesError {
    StatesError::new(names::ITEM_READER_FAILED, cause)
}

/// Streaming iterator over the items of an object's bytes, per `cfg`.
///
/// JSON arrays are parsed whole (the array has to be complete to be valid anyway); JSONL and CSV
/// are read lazily so a large object never has to be materialised as items. After the first
/// error the iterator ends, because AWS fails the whole Map Run on a malformed item source.
pub fn read_items<'a>(
    bytes: &'a [u8],
    cfg: &ReaderConfig,
) -> Box<dyn Iterator<Item = Result<Value, StatesError>> + 'a> {
    // MaxItems of 0 would mean "read nothing"; AWS documents MaxItems as a positive limit and a
    // missing/zero value as "all items", so only a positive value limits.
    let limit = cfg.max_items.filter(|n| *n > 0).unwrap_or(u64::MAX);
    let inner: Box<dyn Iterator<Item = Result<Value, StatesError>> + 'a> = match cfg.input_type {
        InputType::Json => Box::new(json_items(bytes)),
        InputType::Jsonl => Box::new(JsonlItems {
            rest: Some(bytes),
            line: 0,
        }),
        InputType::Csv => Box::new(CsvItems::new(bytes, cfg)),
        InputType::Manifest => Box::new(std::iter::once(Err(reader_failed(
            "A MANIFEST ItemReader lists other objects: parse it with parse_inventory_manifest \
             and read each listed CSV object with the manifest's reader config",
        )))),
    };
    Box::new(Fused {
        inner,
        remaining: limit,
        done: false,
    })
}

/// Stops after `remaining` items or after the first error.
struct Fused<'a> {
    inner: Box<dyn Iterator<Item = Result<Value, StatesError>> + 'a>,
    remaining: u64,
    done: bool,
}

impl Iterator for Fused<'_> {
    type Item = Result<Value, StatesError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.remaining == 0 {
            return None;
        }
        let item = self.inner.next();
        match &item {
            None | Some(Err(_)) => self.done = true,
            Some(Ok(_)) => self.remaining -= 1,
        }
        item
    }
}

fn json_items(bytes: &[u8]) -> Box<dyn Iterator<Item = Result<Value, StatesError>> + '_> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(items)) => Box::new(items.into_iter().map(Ok)),
        Ok(other) => Box::new(std::iter::once(Err(reader_failed(format!(
            "JSON item source must contain a top-level array, found {}",
            type_name(&other)
        ))))),
        Err(e) => Box::new(std::iter::once(Err(reader_failed(format!(
            "Invalid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))))),
    }
}

/// JSON Lines: one value per `\n`-terminated line (a trailing `\r` is tolerated).
struct JsonlItems<'a> {
    rest: Option<&'a [u8]>,
    line: usize,
}

impl Iterator for JsonlItems<'_> {
    type Item = Result<Value, StatesError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest?;
            let (line, tail) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    let (line, newline_and_tail) = rest.split_at(i);
                    (line, newline_and_tail.get(1..))
                }
                None => (rest, None),
            };
            self.rest = tail;
            self.line += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(serde_json::from_slice::<Value>(line).map_err(|e| {
                reader_failed(format!(
                    "Invalid JSON on line {}, column {}: {e}",
                    self.line,
                    e.column()
                ))
            }));
        }
    }
}

/// CSV rows as objects of strings keyed by the header.
struct CsvItems<'a> {
    records: csv::StringRecordsIntoIter<&'a [u8]>,
    headers: Option<Vec<String>>,
    first_row_is_header: bool,
}

impl<'a> CsvItems<'a> {
    fn new(bytes: &'a [u8], cfg: &ReaderConfig) -> Self {
        let reader = csv::ReaderBuilder::new()
            .delimiter(cfg.csv_delimiter.unwrap_or(b','))
            // Headers are handled here so a malformed header row is reported like any other row.
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let (headers, first_row_is_header) = match &cfg.csv_header_location {
            CsvHeaderLocation::FirstRow => (None, true),
            CsvHeaderLocation::Given(h) => (Some(h.clone()), false),
        };
        Self {
            records: reader.into_records(),
            headers,
            first_row_is_header,
        }
    }
}

impl Iterator for CsvItems<'_> {
    type Item = Result<Value, StatesError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let record = match self.records.next()? {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    return Some(Err(reader_failed(format!(
                        "Invalid CSV on line {line}: {e}"
                    ))));
                }
            };
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let Some(headers) = &self.headers else {
                if self.first_row_is_header {
                    let h: Vec<String> = record.iter().map(str::to_string).collect();
                    if let Some(dup) = first_duplicate(&h) {
                        return Some(Err(reader_failed(format!(
                            "CSV header on line {line} repeats the column name '{dup}'"
                        ))));
                    }
                    self.headers = Some(h);
                    continue;
                }
                return None;
            };
            if record.len() != headers.len() {
                return Some(Err(reader_failed(format!(
                    "CSV row on line {line} has {} fields but the header has {}",
                    record.len(),
                    headers.len()
                ))));
            }
            let mut obj = Map::with_capacity(headers.len());
            for (name, value) in headers.iter().zip(record.iter()) {
                obj.insert(name.clone(), Value::String(value.to_string()));
            }
            return Some(Ok(Value::Object(obj)));
        }
    }
}

fn first_duplicate(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .find(|n| !seen.insert(n.as_str()))
        .map(String::as_str)
}

/// The parts of an S3 Inventory `manifest.json` a `MANIFEST` reader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryManifest {
    /// The bucket holding the inventory data files.
    pub destination_bucket: Option<String>,
    /// `fileFormat`; only `CSV` inventories can be read.
    pub file_format: String,
    /// Column names from `fileSchema` (`"Bucket, Key, Size"`).
    pub columns: Vec<String>,
    /// Keys of the inventory data files, in manifest order.
    pub file_keys: Vec<String>,
}

impl InventoryManifest {
    /// The reader config for each data file: CSV with the manifest's columns as given headers.
    pub fn reader_config(&self) -> ReaderConfig {
        let mut cfg = ReaderConfig::new(InputType::Csv);
        cfg.csv_header_location = CsvHeaderLocation::Given(self.columns.clone());
        cfg
    }
}

/// Parse an S3 Inventory manifest (`InputType: MANIFEST`).
pub fn parse_inventory_manifest(bytes: &[u8]) -> Result<InventoryManifest, StatesError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| reader_failed(format!("Invalid manifest JSON at line {}: {e}", e.line())))?;
    let file_format = v
        .get("fileFormat")
        .and_then(Value::as_str)
        .unwrap_or("CSV")
        .to_string();
    if file_format != "CSV" {
        return Err(reader_failed(format!(
            "Inventory fileFormat '{file_format}' is not supported; only CSV can be read"
        )));
    }
    let columns: Vec<String> = v
        .get("fileSchema")
        .and_then(Value::as_str)
        .ok_or_else(|| reader_failed("Inventory manifest has no fileSchema"))?
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let files = v
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| reader_failed("Inventory manifest has no files array"))?;
    let mut file_keys = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        match f.get("key").and_then(Value::as_str) {
            Some(k) => file_keys.push(k.to_string()),
            None => {
                return Err(reader_failed(format!(
                    "Inventory manifest files[{i}] has no key"
                )));
            }
        }
    }
    Ok(InventoryManifest {
        destination_bucket: v
            .get("destinationBucket")
            .and_then(Value::as_str)
            .map(str::to_string),
        file_format,
        columns,
        file_keys,
    })
}

/// The largest batch input AWS accepts (`MaxInputBytesPerBatch` ≤ 256 KiB).
pub const MAX_INPUT_BYTES_PER_BATCH_LIMIT: u64 = 262_144;

/// A resolved `ItemBatcher`: limits and the static `BatchInput`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatcherConfig {
    pub max_items_per_batch: Option<u64>,
    pub max_input_bytes_per_batch: Option<u64>,
    pub batch_input: Option<Value>,
}

impl BatcherConfig {
    /// Parse an `ItemBatcher` object, resolving `MaxItemsPerBatchPath` and
    /// `MaxInputBytesPerBatchPath` against the state input (`$`) or the context object (`$$`).
    /// Errors are `States.Runtime` because a bad batcher is a definition/input problem, not an
    /// item source problem.
    pub fn from_json(v: &Value, input: &Value, ctx: &Value) -> Result<Self, StatesError> {
        let obj = v
            .as_object()
            .ok_or_else(|| StatesError::runtime("ItemBatcher must be a JSON object"))?;
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "MaxItemsPerBatch"
                    | "MaxItemsPerBatchPath"
                    | "MaxInputBytesPerBatch"
                    | "MaxInputBytesPerBatchPath"
                    | "BatchInput"
            ) {
                return Err(StatesError::runtime(format!(
                    "Field '{key}' is not supported in ItemBatcher"
                )));
            }
        }
        let max_items_per_batch =
            resolve_limit(obj, "MaxItemsPerBatch", u64::from(u32::MAX), input, ctx)?;
        let max_input_bytes_per_batch = resolve_limit(
            obj,
            "MaxInputBytesPerBatch",
            MAX_INPUT_BYTES_PER_BATCH_LIMIT,
            input,
            ctx,
        )?;
        if obj.is_empty() {
            // Without any field there is nothing to configure; AWS tooling (CDK) rejects it too.
            return Err(StatesError::runtime(
                "ItemBatcher needs at least one of MaxItemsPerBatch, MaxInputBytesPerBatch (or \
                 their Path forms) or BatchInput",
            ));
        }
        Ok(Self {
            max_items_per_batch,
            max_input_bytes_per_batch,
            batch_input: obj.get("BatchInput").cloned(),
        })
    }

    /// The byte limit that applies: `MaxInputBytesPerBatch`, or AWS's 256 KiB batch input cap.
    pub fn effective_max_bytes(&self) -> u64 {
        self.max_input_bytes_per_batch
            .unwrap_or(MAX_INPUT_BYTES_PER_BATCH_LIMIT)
    }

    /// Wrap an item iterator into a lazy batch iterator.
    pub fn batches<I>(&self, items: I) -> Batcher<I>
    where
        I: Iterator<Item = Result<Value, StatesError>>,
    {
        Batcher {
            items,
            cfg: self.clone(),
            pending: None,
            done: false,
        }
    }
}

/// Read `name` (a literal positive integer) or `namePath` (a reference path into input/context).
fn resolve_limit(
    obj: &Map<String, Value>,
    name: &str,
    max: u64,
    input: &Value,
    ctx: &Value,
) -> Result<Option<u64>, StatesError> {
    let path_name = format!("{name}Path");
    let (value, from) = match (obj.get(name), obj.get(&path_name)) {
        (Some(_), Some(_)) => {
            return Err(StatesError::runtime(format!(
                "{name} and {path_name} are mutually exclusive"
            )));
        }
        (Some(v), None) => (v.clone(), name.to_string()),
        (None, Some(Value::String(p))) => {
            let v = resolve_reference_path(p, input, ctx).ok_or_else(|| {
                StatesError::runtime(format!(
                    "The {path_name} '{p}' does not point to a value in the input"
                ))
            })?;
            (v, format!("{path_name} '{p}'"))
        }
        (None, Some(_)) => {
            return Err(StatesError::runtime(format!(
                "{path_name} must be a string"
            )));
        }
        (None, None) => return Ok(None),
    };
    match value.as_u64() {
        Some(n) if n >= 1 && n <= max => Ok(Some(n)),
        _ => Err(StatesError::runtime(format!(
            "{from} must be an integer between 1 and {max}, got {value}"
        ))),
    }
}

/// Resolve a `*Path` field: AWS requires a Reference Path (one node) into the input or `$$`.
fn resolve_reference_path(path: &str, input: &Value, ctx: &Value) -> Option<Value> {
    crate::data::path::parse_reference_path(path)
        .ok()?
        .select(input, ctx)
        .ok()
}

/// Lazily groups items into `{"BatchInput": ..., "Items": [...]}` objects.
///
/// A batch closes when it holds `MaxItemsPerBatch` items or when adding the next item would make
/// the serialised batch exceed `MaxInputBytesPerBatch` (256 KiB when not set, AWS's cap on a
/// child execution's input). A single item too large for any batch is
/// an error (AWS fails the Map Run rather than dropping the item).
pub struct Batcher<I> {
    items: I,
    cfg: BatcherConfig,
    pending: Option<Value>,
    done: bool,
}

impl<I> Batcher<I> {
    fn render(&self, items: Vec<Value>) -> Value {
        let mut obj = Map::new();
        if let Some(b) = &self.cfg.batch_input {
            obj.insert("BatchInput".into(), b.clone());
        }
        obj.insert("Items".into(), Value::Array(items));
        Value::Object(obj)
    }
}

/// Compact serialised length of a value (what the batch input size limit is measured on).
fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

impl<I> Iterator for Batcher<I>
where
    I: Iterator<Item = Result<Value, StatesError>>,
{
    type Item = Result<Value, StatesError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let max_items = self.cfg.max_items_per_batch.unwrap_or(u64::MAX);
        let limit = usize::try_from(self.cfg.effective_max_bytes()).unwrap_or(usize::MAX);
        // The batch object serialises as its empty form plus each item and a comma between
        // items, so the size is tracked incrementally instead of re-serialising the batch.
        let mut size = json_len(&self.render(Vec::new()));
        let mut batch: Vec<Value> = Vec::new();
        while (batch.len() as u64) < max_items {
            let item = match self.pending.take() {
                Some(v) => v,
                None => match self.items.next() {
                    None => break,
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Some(Ok(v)) => v,
                },
            };
            let added = json_len(&item).saturating_add(usize::from(!batch.is_empty()));
            if size.saturating_add(added) > limit {
                if batch.is_empty() {
                    self.done = true;
                    return Some(Err(reader_failed(format!(
                        "An item does not fit in a batch of at most {limit} bytes \
                         (MaxInputBytesPerBatch)"
                    ))));
                }
                self.pending = Some(item);
                break;
            }
            size += added;
            batch.push(item);
        }
        if batch.is_empty() {
            self.done = true;
            return None;
        }
        Some(Ok(self.render(batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> ReaderConfig {
        ReaderConfig::from_json(&v).expect("valid reader config")
    }

    fn collect(bytes: &[u8], c: &ReaderConfig) -> Vec<Result<Value, StatesError>> {
        read_items(bytes, c).collect()
    }

    #[test]
    fn reader_config_parses_all_fields() {
        let c = cfg(json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN",
            "CSVHeaders": ["a", "b"], "CSVDelimiter": "PIPE", "MaxItems": 5}));
        assert_eq!(c.input_type, InputType::Csv);
        assert_eq!(
            c.csv_header_location,
            CsvHeaderLocation::Given(vec!["a".into(), "b".into()])
        );
        assert_eq!(c.csv_delimiter, Some(b'|'));
        assert_eq!(c.max_items, Some(5));
        let c = cfg(json!({"InputType": "JSONL", "MaxItemsPath": "$.n"}));
        assert_eq!(c.input_type, InputType::Jsonl);
        assert_eq!(c.max_items_path.as_deref(), Some("$.n"));
    }

    #[test]
    fn reader_config_rejects_bad_combinations() {
        let cases = [
            (json!({}), "InputType"),
            (json!({"InputType": "XML"}), "not one of"),
            (
                json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN"}),
                "requires CSVHeaders",
            ),
            (json!({"InputType": "CSV", "CSVHeaders": ["a"]}), "GIVEN"),
            (
                json!({"InputType": "JSON", "CSVDelimiter": "COMMA"}),
                "only allowed",
            ),
            (
                json!({"InputType": "CSV", "CSVDelimiter": "COLON"}),
                "CSVDelimiter",
            ),
            (json!({"InputType": "JSON", "MaxItems": -1}), "MaxItems"),
            (
                json!({"InputType": "JSON", "MaxItems": 100_000_001u64}),
                "MaxItems",
            ),
            (
                json!({"InputType": "JSON", "MaxItems": 1, "MaxItemsPath": "$.x"}),
                "mutually",
            ),
            (json!({"InputType": "JSON", "Foo": 1}), "'Foo'"),
            (json!([]), "object"),
        ];
        for (v, frag) in cases {
            let err = ReaderConfig::from_json(&v).expect_err(&v.to_string());
            assert!(err.contains(frag), "{v}: {err}");
        }
    }

    #[test]
    fn json_array_items_and_max_items() {
        let c = cfg(json!({"InputType": "JSON", "MaxItems": 2}));
        let items: Vec<Value> = read_items(br#"[1, {"a": 2}, 3]"#, &c)
            .map(|r| r.expect("item"))
            .collect();
        assert_eq!(items, vec![json!(1), json!({"a": 2})]);
    }

    #[test]
    fn json_non_array_is_item_reader_failed() {
        let c = ReaderConfig::new(InputType::Json);
        let out = collect(br#"{"a": 1}"#, &c);
        assert_eq!(out.len(), 1);
        let err = out[0].clone().expect_err("error");
        assert_eq!(err.error, "States.ItemReaderFailed");
        assert!(err.cause.contains("top-level array"), "{}", err.cause);
        let out = collect(b"[1, 2", &c);
        let err = out[0].clone().expect_err("error");
        assert!(err.cause.contains("line 1"), "{}", err.cause);
    }

    #[test]
    fn jsonl_streams_skips_blank_lines_and_names_bad_line() {
        let c = ReaderConfig::new(InputType::Jsonl);
        let data = b"{\"a\":1}\r\n\n  \n[2]\n\"x\"\n{bad\n{\"never\":1}\n";
        let out = collect(data, &c);
        assert_eq!(out.len(), 4, "stops after the first error");
        assert_eq!(out[0].clone().expect("ok"), json!({"a": 1}));
        assert_eq!(out[1].clone().expect("ok"), json!([2]));
        assert_eq!(out[2].clone().expect("ok"), json!("x"));
        let err = out[3].clone().expect_err("bad line");
        assert_eq!(err.error, "States.ItemReaderFailed");
        assert!(err.cause.contains("line 6"), "{}", err.cause);
    }

    #[test]
    fn jsonl_is_lazy() {
        // The second line is invalid, but taking one item must not look at it.
        let c = ReaderConfig::new(InputType::Jsonl);
        let mut it = read_items(b"1\n{{{\n", &c);
        assert_eq!(it.next().map(|r| r.expect("ok")), Some(json!(1)));
    }

    #[test]
    fn csv_first_row_values_are_strings() {
        let c = cfg(json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}));
        let data = b"id,score,ok\n1,2.5,true\n2,\"3,0\",false\n";
        let items: Vec<Value> = read_items(data, &c).map(|r| r.expect("row")).collect();
        assert_eq!(
            items,
            vec![
                json!({"id": "1", "score": "2.5", "ok": "true"}),
                json!({"id": "2", "score": "3,0", "ok": "false"}),
            ]
        );
    }

    #[test]
    fn csv_given_headers_delimiter_and_max_items() {
        let c = cfg(json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN",
            "CSVHeaders": ["k", "v"], "CSVDelimiter": "TAB", "MaxItems": 2}));
        let data = b"a\t1\nb\t2\nc\t3\n";
        let items: Vec<Value> = read_items(data, &c).map(|r| r.expect("row")).collect();
        assert_eq!(
            items,
            vec![json!({"k": "a", "v": "1"}), json!({"k": "b", "v": "2"})]
        );
    }

    #[test]
    fn csv_ragged_row_names_line() {
        let c = ReaderConfig::new(InputType::Csv);
        let out = collect(b"a,b\n1,2\n3\n", &c);
        assert_eq!(out[0].clone().expect("ok"), json!({"a": "1", "b": "2"}));
        let err = out[1].clone().expect_err("ragged");
        assert!(err.cause.contains("line 3"), "{}", err.cause);
        assert_eq!(out.len(), 2);
        let out = collect(b"a,a\n1,2\n", &c);
        assert!(out[0].clone().expect_err("dup").cause.contains("'a'"));
    }

    #[test]
    fn manifest_parsing() {
        let m = parse_inventory_manifest(
            br#"{"sourceBucket":"src","destinationBucket":"arn:aws:s3:::inv",
            "fileFormat":"CSV","fileSchema":"Bucket, Key, Size",
            "files":[{"key":"data/1.csv.gz","size":3},{"key":"data/2.csv.gz"}]}"#,
        )
        .expect("manifest");
        assert_eq!(m.columns, vec!["Bucket", "Key", "Size"]);
        assert_eq!(m.file_keys, vec!["data/1.csv.gz", "data/2.csv.gz"]);
        assert_eq!(
            m.reader_config().csv_header_location,
            CsvHeaderLocation::Given(vec!["Bucket".into(), "Key".into(), "Size".into()])
        );
        let err = parse_inventory_manifest(br#"{"fileFormat":"ORC","fileSchema":"x","files":[]}"#)
            .expect_err("orc");
        assert_eq!(err.error, "States.ItemReaderFailed");
        let out = collect(b"{}", &ReaderConfig::new(InputType::Manifest));
        assert!(out[0].is_err());
    }

    #[test]
    fn batcher_by_count_with_batch_input() {
        let b = BatcherConfig::from_json(
            &json!({"MaxItemsPerBatch": 2, "BatchInput": {"job": "x"}}),
            &json!({}),
            &json!({}),
        )
        .expect("batcher");
        let items = (1..=5).map(|i| Ok(json!(i)));
        let batches: Vec<Value> = b.batches(items).map(|r| r.expect("batch")).collect();
        assert_eq!(
            batches,
            vec![
                json!({"BatchInput": {"job": "x"}, "Items": [1, 2]}),
                json!({"BatchInput": {"job": "x"}, "Items": [3, 4]}),
                json!({"BatchInput": {"job": "x"}, "Items": [5]}),
            ]
        );
    }

    #[test]
    fn batcher_by_bytes_and_paths() {
        // {"Items":["aaaa","bbbb"]} is 25 bytes; a third string would not fit in 30.
        let b = BatcherConfig::from_json(
            &json!({"MaxInputBytesPerBatchPath": "$.limits.bytes"}),
            &json!({"limits": {"bytes": 30}}),
            &json!({}),
        )
        .expect("batcher");
        assert_eq!(b.max_input_bytes_per_batch, Some(30));
        let items = ["aaaa", "bbbb", "cccc"].into_iter().map(|s| Ok(json!(s)));
        let batches: Vec<Value> = b.batches(items).map(|r| r.expect("batch")).collect();
        assert_eq!(
            batches,
            vec![
                json!({"Items": ["aaaa", "bbbb"]}),
                json!({"Items": ["cccc"]})
            ]
        );
        let b = BatcherConfig::from_json(
            &json!({"MaxItemsPerBatchPath": "$$.Map.n"}),
            &json!({}),
            &json!({"Map": {"n": 3}}),
        )
        .expect("ctx path");
        assert_eq!(b.max_items_per_batch, Some(3));
    }

    #[test]
    fn batcher_errors() {
        let none = json!({});
        for (v, frag) in [
            (json!({}), "at least one"),
            (json!({"MaxItemsPerBatch": 0}), "between 1"),
            (json!({"MaxInputBytesPerBatch": 262_145}), "262144"),
            (
                json!({"MaxItemsPerBatch": 1, "MaxItemsPerBatchPath": "$.a"}),
                "mutually",
            ),
            (
                json!({"MaxItemsPerBatchPath": "$.missing"}),
                "does not point",
            ),
            (json!({"Foo": 1}), "'Foo'"),
        ] {
            let err = BatcherConfig::from_json(&v, &none, &none).expect_err(&v.to_string());
            assert!(err.cause.contains(frag), "{v}: {}", err.cause);
        }
        let b = BatcherConfig::from_json(&json!({"MaxInputBytesPerBatch": 10}), &none, &none)
            .expect("batcher");
        let out: Vec<_> = b
            .batches(std::iter::once(Ok(json!("far too long"))))
            .collect();
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());
        // Reader errors pass through and end the batching.
        let b = BatcherConfig::from_json(&json!({"MaxItemsPerBatch": 5}), &none, &none)
            .expect("batcher");
        let items = vec![Ok(json!(1)), Err(reader_failed("boom"))];
        let out: Vec<_> = b.batches(items.into_iter()).collect();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].clone().expect_err("err").cause, "boom");
    }

    #[test]
    fn batch_size_tracking_is_exact() {
        let none = json!({});
        let items: Vec<Value> = (0..50)
            .map(|i| json!({"id": i, "name": "x".repeat(i % 7)}))
            .collect();
        for limit in [64u64, 100, 333, 1000] {
            let b = BatcherConfig::from_json(
                &json!({"MaxInputBytesPerBatch": limit, "BatchInput": {"k": [1, 2]}}),
                &none,
                &none,
            )
            .expect("batcher");
            let batches: Vec<Value> = b
                .batches(items.clone().into_iter().map(Ok))
                .map(|r| r.expect("batch"))
                .collect();
            let mut flattened = Vec::new();
            for batch in &batches {
                let len = serde_json::to_vec(batch).expect("serialise").len() as u64;
                assert!(len <= limit, "{len} > {limit}");
                flattened.extend(batch["Items"].as_array().cloned().unwrap_or_default());
            }
            assert_eq!(flattened, items, "no item lost or reordered at {limit}");
        }
        // Only BatchInput: batches are capped by AWS's 256 KiB limit.
        let b = BatcherConfig::from_json(&json!({"BatchInput": {}}), &none, &none).expect("ok");
        assert_eq!(b.effective_max_bytes(), 262_144);
        let n = b.batches((0..1000).map(|i| Ok(json!(i)))).count();
        assert_eq!(n, 1);
    }

    #[test]
    fn reference_path_resolution() {
        let input = json!({"a": {"b": [10, {"c d": 7}]}});
        assert_eq!(
            resolve_reference_path("$.a.b[1]['c d']", &input, &Value::Null),
            Some(json!(7))
        );
        assert_eq!(
            resolve_reference_path("$", &input, &Value::Null),
            Some(input.clone())
        );
        assert_eq!(resolve_reference_path("$.a..b", &input, &Value::Null), None);
        assert_eq!(
            resolve_reference_path("$.a.b[*]", &input, &Value::Null),
            None
        );
        assert_eq!(resolve_reference_path("a.b", &input, &Value::Null), None);
    }

    proptest::proptest! {
        #[test]
        fn read_items_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
                                   kind in 0usize..4, max in 0u64..5) {
            let input_type = [InputType::Json, InputType::Jsonl, InputType::Csv, InputType::Manifest]
                .get(kind)
                .copied()
                .unwrap_or(InputType::Json);
            let c = ReaderConfig::new(input_type).with_max_items(max);
            let n = read_items(&bytes, &c).count() as u64;
            if max > 0 {
                proptest::prop_assert!(n <= max);
            }
            let b = BatcherConfig::from_json(&json!({"MaxInputBytesPerBatch": 64}), &json!({}), &json!({}))
                .expect("batcher");
            let _ = b.batches(read_items(&bytes, &c)).count();
        }
    }
}
