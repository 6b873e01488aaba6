//! The dialplans in service, and hot reload.
//!
//! Every `*.toml` in the dialplan folder is one dialplan, named by its file
//! stem. The folder is polled: a file whose size or mtime changed is
//! compiled with the loader `hotline check` uses; if it has errors they are
//! logged and the last good version stays in service. Calls hold an
//! `Arc<Dialplan>` taken when they start, so a reload never changes a call
//! in progress.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::dialplan::{self, Dialplan};

type Stamp = (SystemTime, u64);

pub struct DialplanRegistry {
    dir: PathBuf,
    default_name: String,
    plans: RwLock<HashMap<String, Arc<Dialplan>>>,
    /// Size/mtime of each file as last looked at (good or bad), so a broken
    /// file is reported once per edit, not once per poll.
    seen: RwLock<HashMap<PathBuf, Stamp>>,
}

/// What one scan did, for logs and tests.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    /// File and error text of each edit that was refused.
    pub rejected: Vec<(PathBuf, String)>,
}

impl DialplanRegistry {
    /// Loads the folder. Fails when the default dialplan is not among the
    /// valid ones: a server that cannot answer a call must not start.
    pub fn load(dir: &Path, default_name: &str) -> Result<(Self, ReloadReport), String> {
        let reg = DialplanRegistry {
            dir: dir.to_path_buf(),
            default_name: default_name.to_string(),
            plans: RwLock::new(HashMap::new()),
            seen: RwLock::new(HashMap::new()),
        };
        let report = reg.scan();
        if reg.get(default_name).is_none() {
            let mut msg = format!("default dialplan {default_name:?} is not a valid dialplan in {}", dir.display());
            for (file, err) in &report.rejected {
                msg.push_str(&format!("\n{}: {err}", file.display()));
            }
            return Err(msg);
        }
        Ok((reg, report))
    }

    pub fn get(&self, name: &str) -> Option<Arc<Dialplan>> {
        self.plans.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// The dialplan a call asked for, or the default one (with the reason
    /// when the requested one does not exist).
    pub fn select(&self, requested: Option<&str>) -> (Option<Arc<Dialplan>>, Option<String>) {
        match requested {
            Some(name) => match self.get(name) {
                Some(d) => (Some(d), None),
                None => (
                    self.get(&self.default_name),
                    Some(format!("dialplan {name:?} requested by the dial string does not exist; using {:?}", self.default_name)),
                ),
            },
            None => (self.get(&self.default_name), None),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.plans.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        v.sort();
        v
    }

    /// Looks at every `*.toml` once; (re)compiles those that changed.
    pub fn scan(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                report.rejected.push((self.dir.clone(), format!("cannot read the dialplan folder: {e}")));
                return report;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let stamp = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
            if self.seen.read().unwrap_or_else(|p| p.into_inner()).get(&path) == Some(&stamp) {
                continue;
            }
            self.seen.write().unwrap_or_else(|p| p.into_inner()).insert(path.clone(), stamp);
            match dialplan::load(&path) {
                Ok(plan) => {
                    let name = plan.name.clone();
                    let unchanged = self.get(&name).is_some_and(|old| old.version == plan.version);
                    if !unchanged {
                        tracing::info!(dialplan = %name, version = %plan.version, file = %path.display(), "dialplan in service");
                        self.plans.write().unwrap_or_else(|p| p.into_inner()).insert(name.clone(), Arc::new(plan));
                        report.loaded.push(name);
                    }
                }
                Err(diags) => {
                    let text = diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n");
                    let keeps = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .and_then(|n| self.get(n))
                        .map(|d| format!("version {} stays in service", d.version))
                        .unwrap_or_else(|| "not in service".to_string());
                    tracing::error!(file = %path.display(), "dialplan edit refused ({keeps}):\n{text}");
                    report.rejected.push((path, text));
                }
            }
        }
        report
    }
}
