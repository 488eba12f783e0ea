//! `switchyard-dataplane`: the media forwarding process.

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version" | "-V") => {
            println!("switchyard-dataplane {}", switchyard_dataplane::VERSION);
            ExitCode::SUCCESS
        }
        Some("--help" | "-h") | None => {
            println!(
                "switchyard-dataplane {}\n\nThe forwarding runtime (io_uring workers, shared-memory ABI) is not built yet;\nthis binary currently only reports its version.",
                switchyard_dataplane::VERSION
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("switchyard-dataplane: unknown argument {other:?}; try --help");
            ExitCode::from(2)
        }
    }
}
