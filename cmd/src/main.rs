//! The `kubelite` binary.
fn main() {}
