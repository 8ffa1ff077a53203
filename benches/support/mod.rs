//! Code the benchmarks share.

#![allow(dead_code)]

pub mod streams;
