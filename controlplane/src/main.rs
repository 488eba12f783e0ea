//! `switchyard`: the command people run.

fn main() {
    println!("{}", switchyard_controlplane::status_line());
}
