//! Host tuning profiles and a checker.
//!
//! A profile lists sysctls and the minimum value each should have. `check`
//! reads them under a root directory (`/` on a real host, a temporary
//! directory in tests) and reports what differs. Applying profiles comes
//! with the tuning issue.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use thiserror::Error;

/// A profile error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TuningError {
    /// No built-in profile of this name.
    #[error("unknown profile {0:?} (known: 1g, 10g)")]
    UnknownProfile(String),
    /// A profile line is not `key = number`.
    #[error("profile line {line}: expected `key = number`, found {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
}

/// One sysctl and the minimum value it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Dotted sysctl name, e.g. `net.core.rmem_max`.
    pub key: String,
    /// Minimum value.
    pub min: u64,
}

impl Setting {
    /// Where the value lives under `root`.
    pub fn path(&self, root: &Path) -> PathBuf {
        root.join("proc/sys").join(self.key.replace('.', "/"))
    }
}

/// The text of a built-in profile.
pub fn builtin(name: &str) -> Result<&'static str, TuningError> {
    match name {
        "1g" => Ok(include_str!("../profiles/1g.conf")),
        "10g" => Ok(include_str!("../profiles/10g.conf")),
        _ => Err(TuningError::UnknownProfile(name.to_string())),
    }
}

/// Parses `key = number` lines; `#` starts a comment.
pub fn parse(text: &str) -> Result<Vec<Setting>, TuningError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = || TuningError::BadLine {
            line: i + 1,
            text: raw.to_string(),
        };
        let (k, v) = line.split_once('=').ok_or_else(bad)?;
        let min = v.trim().parse().map_err(|_| bad())?;
        out.push(Setting {
            key: k.trim().to_string(),
            min,
        });
    }
    Ok(out)
}

/// The state of one setting on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// At or above the minimum.
    Ok(u64),
    /// Below the minimum.
    Low(u64),
    /// Not readable (absent, or not a number).
    Unreadable,
}

/// Reads every setting under `root`.
pub fn check(settings: &[Setting], root: &Path) -> Vec<(Setting, Status)> {
    settings
        .iter()
        .map(|s| {
            let status = match std::fs::read_to_string(s.path(root))
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                Some(v) if v >= s.min => Status::Ok(v),
                Some(v) => Status::Low(v),
                None => Status::Unreadable,
            };
            (s.clone(), status)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for name in ["1g", "10g"] {
            assert!(!parse(builtin(name).unwrap()).unwrap().is_empty());
        }
        assert!(builtin("5g").is_err());
        assert!(matches!(
            parse("a = b"),
            Err(TuningError::BadLine { line: 1, .. })
        ));
    }

    #[test]
    fn check_against_a_fake_root() {
        let root = std::env::temp_dir().join(format!("switchyard-tune-{}", std::process::id()));
        let dir = root.join("proc/sys/net/core");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rmem_max"), "212992\n").unwrap();
        std::fs::write(dir.join("wmem_max"), "9000000\n").unwrap();
        let s = parse("net.core.rmem_max = 8388608\nnet.core.wmem_max = 8388608\nnet.core.x = 1")
            .unwrap();
        let got: Vec<_> = check(&s, &root).into_iter().map(|(_, st)| st).collect();
        assert_eq!(
            got,
            vec![Status::Low(212992), Status::Ok(9000000), Status::Unreadable]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
