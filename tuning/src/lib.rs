//! Host tuning profiles and a tool that checks, diffs and applies them.
//!
//! A profile (`profiles/*.toml`, built in) lists files under a root (`/` on
//! a real host, a temporary directory in tests) — sysctls under `proc/sys`,
//! sysfs files — with the value each should have and why. [`check`] reads
//! them, [`apply`] writes what differs. Guidance that is not a file to write
//! (GRO/GSO offloads, RPS/XPS, IRQ affinity) is in docs/tuning.md.
#![forbid(unsafe_code)]

use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A profile error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TuningError {
    /// No built-in profile of this name.
    #[error("unknown profile {0:?} (known: 1g, 10g)")]
    UnknownProfile(String),
    /// The profile does not parse.
    #[error("profile {name}: {message}")]
    BadProfile {
        /// Profile name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Writing a setting failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a setting should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Numbers, each at least this (multi-value sysctls such as udp_mem).
    AtLeast(Vec<u64>),
    /// Exactly this text.
    Exact(String),
    /// The file contains this text (read-only guidance).
    Contains(String),
}

impl std::fmt::Display for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Want::AtLeast(v) => {
                let v: Vec<String> = v.iter().map(u64::to_string).collect();
                write!(f, "≥ {}", v.join(" "))
            }
            Want::Exact(s) => write!(f, "= {s}"),
            Want::Contains(s) => write!(f, "contains {s:?}"),
        }
    }
}

/// One file and the value it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Path under the root, e.g. `proc/sys/net/core/rmem_max`; a `*`
    /// component matches every directory entry there.
    pub path: String,
    /// The wanted value.
    pub want: Want,
    /// Why it matters.
    pub reason: String,
    /// `apply` may write it.
    pub apply: bool,
}

impl Setting {
    /// The sysctl name (`net.core.rmem_max`) for `proc/sys` paths.
    pub fn sysctl(&self) -> Option<String> {
        self.path
            .strip_prefix("proc/sys/")
            .map(|k| k.replace('/', "."))
    }

    /// A short name for reports.
    pub fn name(&self) -> String {
        self.sysctl().unwrap_or_else(|| format!("/{}", self.path))
    }
}

/// A profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// What host it is for.
    pub description: String,
    /// The settings.
    pub settings: Vec<Setting>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    description: String,
    setting: Vec<SettingFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingFile {
    path: String,
    at_least: Option<Vec<u64>>,
    exact: Option<String>,
    contains: Option<String>,
    reason: String,
    apply: Option<bool>,
}

/// The text of a built-in profile.
pub fn builtin(name: &str) -> Result<&'static str, TuningError> {
    match name {
        "1g" => Ok(include_str!("../profiles/1g.toml")),
        "10g" => Ok(include_str!("../profiles/10g.toml")),
        _ => Err(TuningError::UnknownProfile(name.to_string())),
    }
}

/// Parses a profile.
pub fn parse(text: &str) -> Result<Profile, TuningError> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| TuningError::BadProfile {
        name: "?".into(),
        message: e.to_string(),
    })?;
    let bad = |message: String| TuningError::BadProfile {
        name: file.name.clone(),
        message,
    };
    let mut settings = Vec::new();
    for s in file.setting {
        let want = match (s.at_least, s.exact, s.contains) {
            (Some(v), None, None) if !v.is_empty() => Want::AtLeast(v),
            (None, Some(e), None) => Want::Exact(e),
            (None, None, Some(c)) => Want::Contains(c),
            _ => {
                return Err(bad(format!(
                    "{}: give exactly one of at_least, exact, contains",
                    s.path
                )));
            }
        };
        if s.path.starts_with('/') || s.path.split('/').any(|c| c == "..") {
            return Err(bad(format!("{}: paths are relative to the root", s.path)));
        }
        let apply = s.apply.unwrap_or(!matches!(want, Want::Contains(_)));
        settings.push(Setting {
            path: s.path,
            want,
            reason: s.reason,
            apply,
        });
    }
    Ok(Profile {
        name: file.name,
        description: file.description,
        settings,
    })
}

/// A built-in profile, parsed.
pub fn profile(name: &str) -> Result<Profile, TuningError> {
    parse(builtin(name)?)
}

/// The state of one file on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// As wanted; the value read.
    Ok(String),
    /// Not as wanted; the value read.
    Differs(String),
    /// Absent or unreadable.
    Missing,
}

/// One file of a setting (a `*` path gives several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The setting.
    pub setting: Setting,
    /// The file.
    pub file: PathBuf,
    /// What it holds.
    pub status: Status,
}

impl Finding {
    /// True unless the file is as wanted.
    pub fn needs_attention(&self) -> bool {
        !matches!(self.status, Status::Ok(_))
    }

    /// The value `apply` writes (for at-least numbers: the larger of each).
    pub fn target(&self) -> Option<String> {
        match (&self.setting.want, &self.status) {
            (Want::AtLeast(want), Status::Differs(have)) => {
                let have: Vec<u64> = have
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let v: Vec<String> = want
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (*w).max(have.get(i).copied().unwrap_or(0)).to_string())
                    .collect();
                Some(v.join(" "))
            }
            (Want::AtLeast(want), Status::Missing) => Some(
                want.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            (Want::Exact(e), _) => Some(e.clone()),
            _ => None,
        }
    }
}

/// Every file a path names under `root` (expanding `*` components).
fn expand(root: &Path, path: &str) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    for part in path.split('/') {
        out = out
            .into_iter()
            .flat_map(|dir| {
                if part.contains('*') {
                    let (pre, post) = part.split_once('*').unwrap_or((part, ""));
                    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .filter(|e| {
                            let n = e.file_name();
                            let n = n.to_string_lossy();
                            n.starts_with(pre)
                                && n.ends_with(post)
                                && n.len() >= pre.len() + post.len()
                        })
                        .map(|e| e.path())
                        .collect();
                    v.sort();
                    v
                } else {
                    vec![dir.join(part)]
                }
            })
            .collect();
    }
    out
}

fn judge(want: &Want, text: &str) -> bool {
    match want {
        Want::AtLeast(w) => {
            let have: Vec<u64> = text
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            have.len() >= w.len() && w.iter().zip(&have).all(|(w, h)| h >= w)
        }
        Want::Exact(e) => text.trim() == e,
        Want::Contains(c) => text.contains(c.as_str()),
    }
}

/// Reads every setting of `profile` under `root`.
pub fn check(profile: &Profile, root: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &profile.settings {
        let files = expand(root, &s.path);
        // a glob that matches nothing (no cpufreq here): nothing to check
        if files.is_empty() {
            continue;
        }
        for file in files {
            let status = match std::fs::read_to_string(&file) {
                Ok(t) if judge(&s.want, &t) => Status::Ok(t.trim().to_string()),
                Ok(t) => Status::Differs(t.trim().to_string()),
                Err(_) => Status::Missing,
            };
            // a sysfs file that does not exist on this host (no cpufreq
            // driver in a VM) is not a shortfall
            if status == Status::Missing && !s.path.starts_with("proc/") && s.path.contains('*') {
                continue;
            }
            out.push(Finding {
                setting: s.clone(),
                file,
                status,
            });
        }
    }
    out
}

/// Writes what differs (settings marked `apply`; files the host does not
/// have are left to the report); returns what it wrote.
pub fn apply(profile: &Profile, root: &Path) -> Result<Vec<(PathBuf, String)>, TuningError> {
    let mut written = Vec::new();
    for f in check(profile, root) {
        if !matches!(f.status, Status::Differs(_)) || !f.setting.apply {
            continue;
        }
        let Some(value) = f.target() else { continue };
        std::fs::write(&f.file, format!("{value}\n")).map_err(|source| TuningError::Write {
            path: f.file.clone(),
            source,
        })?;
        written.push((f.file, value));
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
