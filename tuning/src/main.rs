//! `switchyard-tune check [--profile 1g|10g] [--root DIR]`: compares a host
//! with a tuning profile and prints what differs.

use std::path::PathBuf;
use std::process::ExitCode;
use switchyard_tuning::{Status, builtin, check, parse};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut profile, mut root) = ("1g".to_string(), PathBuf::from("/"));
    match args.next().as_deref() {
        Some("check") => {}
        _ => {
            eprintln!("usage: switchyard-tune check [--profile 1g|10g] [--root DIR]");
            return ExitCode::from(2);
        }
    }
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--profile", Some(v)) => profile = v,
            ("--root", Some(v)) => root = PathBuf::from(v),
            _ => {
                eprintln!("switchyard-tune: bad argument {a:?}");
                return ExitCode::from(2);
            }
        }
    }
    let settings = match builtin(&profile).and_then(parse) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchyard-tune: {e}");
            return ExitCode::from(2);
        }
    };
    let mut low = 0;
    for (s, status) in check(&settings, &root) {
        match status {
            Status::Ok(v) => println!("ok      {} = {v} (want ≥ {})", s.key, s.min),
            Status::Low(v) => {
                low += 1;
                println!("LOW     {} = {v} (want ≥ {})", s.key, s.min);
            }
            Status::Unreadable => {
                low += 1;
                println!("MISSING {} (want ≥ {})", s.key, s.min);
            }
        }
    }
    println!(
        "profile {profile}: {} of {} settings need attention",
        low,
        settings.len()
    );
    if low == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
