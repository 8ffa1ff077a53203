//! The `companin` binary: see `companin --help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    companin::cli::run().await
}
