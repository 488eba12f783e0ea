//! `switchyard-tune check|diff|apply [--profile 1g|10g] [--root DIR]`:
//! compares a host with a tuning profile, prints the commands that would
//! fix it, or applies them (as root).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchyard_tuning::{Finding, Status, apply, check, profile};

const USAGE: &str = "usage: switchyard-tune check|diff|apply [--profile 1g|10g] [--root DIR]

  check   what differs from the profile, and why each setting matters (exit 1 if anything does)
  diff    the commands that would bring this host to the profile
  apply   write them (root only on a real host; --root DIR for a copy of one)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let (mut name, mut root) = ("1g".to_string(), PathBuf::from("/"));
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--profile", Some(v)) => name = v,
            ("--root", Some(v)) => root = PathBuf::from(v),
            _ => {
                eprintln!("switchyard-tune: bad argument {a:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let p = match profile(&name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("switchyard-tune: {e}");
            return ExitCode::from(2);
        }
    };
    match command.as_str() {
        "check" => {
            println!("profile {}: {}", p.name, p.description);
            let found = check(&p, &root);
            let mut attention = 0;
            for f in &found {
                let label = match (&f.status, f.setting.apply) {
                    (Status::Ok(_), _) => "ok",
                    (_, false) => "ADVICE",
                    (Status::Differs(_), true) => "LOW",
                    (Status::Missing, true) => "MISSING",
                };
                let have = match &f.status {
                    Status::Ok(v) | Status::Differs(v) => v.replace(['\t', '\n'], " "),
                    Status::Missing => "(absent)".into(),
                };
                let have = if have.len() > 60 {
                    format!("{}…", &have[..60])
                } else {
                    have
                };
                println!(
                    "{label:<8}{} = {have} (want {})",
                    name_of(f, &root),
                    f.setting.want
                );
                if f.needs_attention() {
                    attention += 1;
                    println!("        {}", f.setting.reason);
                }
            }
            println!("{attention} of {} need attention", found.len());
            if attention == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        "diff" => {
            for f in check(&p, &root).iter().filter(|f| f.needs_attention()) {
                match (f.target(), f.setting.sysctl(), f.setting.apply) {
                    (Some(v), Some(key), true) => println!("sysctl -w {key}=\"{v}\""),
                    (Some(v), None, true) => println!("echo {v} > {}", f.file.display()),
                    _ => println!(
                        "# by hand: {} (want {}): {}",
                        name_of(f, &root),
                        f.setting.want,
                        f.setting.reason
                    ),
                }
            }
            ExitCode::SUCCESS
        }
        "apply" => {
            if root == Path::new("/") && !is_root() {
                eprintln!("switchyard-tune: apply writes /proc/sys and /sys: run it as root");
                return ExitCode::from(1);
            }
            match apply(&p, &root) {
                Ok(written) => {
                    for (file, value) in &written {
                        println!("wrote {} = {value}", file.display());
                    }
                    println!(
                        "{} settings written; `switchyard-tune check` shows what is left",
                        written.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("switchyard-tune: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The sysctl name, or the file's path as it is on the host.
fn name_of(f: &Finding, root: &Path) -> String {
    f.setting.sysctl().unwrap_or_else(|| {
        let rel = f.file.strip_prefix(root).unwrap_or(&f.file);
        format!("/{}", rel.display())
    })
}

/// Whether this process runs as root (reads /proc/self/status: no libc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
