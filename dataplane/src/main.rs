//! `switchyard-dataplane`: the media forwarding process (see
//! `switchyard_dataplane::runtime`).

fn main() -> std::process::ExitCode {
    switchyard_dataplane::runtime::main_with_args(std::env::args().skip(1))
}
