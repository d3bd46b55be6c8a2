//! ItemReader content parsing (JSON, JSONL, CSV with ReaderConfig) and ItemBatcher batching.
