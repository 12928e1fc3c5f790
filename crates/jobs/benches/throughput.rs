//! Throughput benchmark (written later).
fn main() {}
