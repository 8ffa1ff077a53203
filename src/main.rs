//! The `companin` binary: see `companin --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    companin::cli::run()
}
