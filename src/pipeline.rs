//! Wires every stage with bounded crossbeam channels (issue 6).
