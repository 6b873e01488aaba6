//! The dialplans in service, and hot reload.
//!
//! Every `*.toml` in the dialplan folder is one dialplan, named by its file
//! stem. The folder is polled: a file whose size or mtime changed is
//! compiled with the loader `hotline check` uses; if it has errors they are
//! logged and the last good version stays in service. A file that is
//! deleted takes its dialplan out of service (calls asking for it get the
//! default one, as for an unknown name) — except the default dialplan's,
//! whose last good version keeps serving, with an error logged, since
//! calls need a dialplan. Calls hold an `Arc<Dialplan>` taken when they
//! start, so a reload never changes a call in progress.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::asr::models::WhisperModelName;
use crate::dialplan::{self, Dialplan};

type Stamp = (SystemTime, u64);

pub struct DialplanRegistry {
    dir: PathBuf,
    /// The server's recogniser: a dialplan in a language it does not hear
    /// is refused, never put into service.
    recognizer: WhisperModelName,
    default_name: String,
    plans: RwLock<HashMap<String, Arc<Dialplan>>>,
    /// Size/mtime of each file as last looked at (good or bad), so a broken
    /// file is reported once per edit, not once per poll.
    seen: RwLock<HashMap<PathBuf, Stamp>>,
    /// The default dialplan's file is gone (reported once, until it is back).
    default_file_gone: AtomicBool,
}

/// What one scan did, for logs and tests.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    /// Dialplans taken out of service because their file was deleted.
    pub removed: Vec<String>,
    /// File and error text of each edit that was refused.
    pub rejected: Vec<(PathBuf, String)>,
}

/// The folder has no valid default dialplan: a server that cannot answer
/// a call must not start.
#[derive(Debug, thiserror::Error)]
#[error("default dialplan {name:?} is not a valid dialplan in {}{}", .dir.display(), rejections(.rejected))]
pub struct DialplanLoadError {
    pub name: String,
    pub dir: PathBuf,
    /// Each refused file and why, one line each in the message.
    pub rejected: Vec<(PathBuf, String)>,
}

fn rejections(rejected: &[(PathBuf, String)]) -> String {
    rejected.iter().map(|(file, err)| format!("\n{}: {err}", file.display())).collect()
}

impl DialplanRegistry {
    /// Loads the folder for calls recognised by `recognizer`. Fails when the
    /// default dialplan is not among the valid ones: a server that cannot
    /// answer a call must not start.
    pub fn load(
        dir: &Path,
        default_name: &str,
        recognizer: WhisperModelName,
    ) -> Result<(Self, ReloadReport), DialplanLoadError> {
        let reg = DialplanRegistry {
            dir: dir.to_path_buf(),
            recognizer,
            default_name: default_name.to_string(),
            plans: RwLock::new(HashMap::new()),
            seen: RwLock::new(HashMap::new()),
            default_file_gone: AtomicBool::new(false),
        };
        let report = reg.scan();
        if reg.get(default_name).is_none() {
            return Err(DialplanLoadError {
                name: default_name.to_string(),
                dir: dir.to_path_buf(),
                rejected: report.rejected,
            });
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
                    Some(format!(
                        "dialplan {name:?} requested by the dial string does not exist; using {:?}",
                        self.default_name
                    )),
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
        self.forget_deleted(&files, &mut report);
        for path in files {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let stamp = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
            if self.seen.read().unwrap_or_else(|p| p.into_inner()).get(&path) == Some(&stamp) {
                continue;
            }
            self.seen.write().unwrap_or_else(|p| p.into_inner()).insert(path.clone(), stamp);
            match dialplan::load_for(&path, self.recognizer) {
                Ok(plan) => {
                    let name = plan.name.clone();
                    let unchanged = self.get(&name).is_some_and(|old| old.version == plan.version);
                    crate::metrics::dialplan_reload(true);
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
                    crate::metrics::dialplan_reload(false);
                    report.rejected.push((path, text));
                }
            }
        }
        report
    }

    /// Takes the dialplans whose file is gone out of service, but the
    /// default one (calls need a dialplan: its last good version stays).
    fn forget_deleted(&self, files: &[PathBuf], report: &mut ReloadReport) {
        let present: HashSet<&PathBuf> = files.iter().collect();
        // A file that comes back is compiled again, whatever its stamp.
        self.seen.write().unwrap_or_else(|p| p.into_inner()).retain(|path, _| present.contains(path));
        let default_file = self.dir.join(format!("{}.toml", self.default_name));
        let default_gone = !present.contains(&default_file);
        if default_gone && !self.default_file_gone.swap(true, Ordering::SeqCst) {
            let version = self.get(&self.default_name).map(|d| d.version.clone()).unwrap_or_default();
            tracing::error!(
                dialplan = %self.default_name, %version, file = %default_file.display(),
                "the default dialplan's file was deleted; its last good version stays in service until the file is back"
            );
            report.rejected.push((default_file, "the default dialplan's file was deleted".into()));
        } else if !default_gone {
            self.default_file_gone.store(false, Ordering::SeqCst);
        }
        let mut plans = self.plans.write().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = plans
            .keys()
            .filter(|name| **name != self.default_name && !present.contains(&self.dir.join(format!("{name}.toml"))))
            .cloned()
            .collect();
        for name in gone {
            if let Some(plan) = plans.remove(&name) {
                tracing::warn!(
                    dialplan = %name, version = %plan.version,
                    "dialplan file deleted: out of service (calls in progress keep it; new calls asking for it get the default)"
                );
                report.removed.push(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = include_str!("../../tests/fixtures/e2e/words.toml");

    #[test]
    fn a_deleted_dialplan_leaves_service_and_the_default_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hotline.toml"), PLAN).unwrap();
        std::fs::write(dir.path().join("sales.toml"), PLAN).unwrap();
        let (reg, _) = DialplanRegistry::load(dir.path(), "hotline", WhisperModelName::default()).unwrap();
        let in_call = reg.select(Some("sales")).0.expect("sales in service");

        std::fs::remove_file(dir.path().join("sales.toml")).unwrap();
        let report = reg.scan();
        assert_eq!(report.removed, vec!["sales".to_string()]);
        assert_eq!(reg.names(), vec!["hotline".to_string()]);
        let (plan, note) = reg.select(Some("sales"));
        assert_eq!(plan.unwrap().name, "hotline", "the default answers");
        assert!(note.unwrap().contains("\"sales\""), "with a warning");
        assert_eq!(in_call.name, "sales", "a call in progress keeps its version");
        assert_eq!(reg.scan(), ReloadReport::default(), "reported once");

        // The file is back: in service again.
        std::fs::write(dir.path().join("sales.toml"), PLAN).unwrap();
        assert_eq!(reg.scan().loaded, vec!["sales".to_string()]);

        // The default dialplan's file is deleted: its last version serves on.
        std::fs::remove_file(dir.path().join("hotline.toml")).unwrap();
        let report = reg.scan();
        assert!(report.removed.is_empty() && report.rejected.len() == 1, "{report:?}");
        assert_eq!(reg.select(None).0.unwrap().name, "hotline");
        assert!(reg.scan().rejected.is_empty(), "reported once");
    }

    /// A Mandarin dialplan on the English-only tiny.en would be heard as
    /// English nonsense: the server refuses it, naming why, and serves it
    /// once the multilingual model is configured.
    #[test]
    fn a_dialplan_in_a_language_the_recogniser_does_not_hear_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let mandarin = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans/examples/mandarin.toml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("hotline.toml"), PLAN).unwrap();
        std::fs::write(dir.path().join("mandarin.toml"), &mandarin).unwrap();

        let (reg, report) = DialplanRegistry::load(dir.path(), "hotline", WhisperModelName::TinyEn).unwrap();
        assert_eq!(reg.names(), vec!["hotline".to_string()], "only the English dialplan is in service");
        let (file, why) = &report.rejected[0];
        assert!(file.ends_with("mandarin.toml"), "{file:?}");
        assert!(why.contains("needs a multilingual recogniser"), "{why}");

        let (reg, report) = DialplanRegistry::load(dir.path(), "hotline", WhisperModelName::Base).unwrap();
        assert!(report.rejected.is_empty(), "{report:?}");
        assert_eq!(reg.names(), vec!["hotline".to_string(), "mandarin".to_string()]);
    }
}
