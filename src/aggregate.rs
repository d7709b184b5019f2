//! Aggregator: joins each tweet with its two scores by ingest sequence number (issue 5).
