//! PostgreSQL sink: buffer, spool, adaptive-batch writer, monitor, health checker (issue 5).
