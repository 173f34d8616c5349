//! `file_sd_configs`: target groups read from JSON or YAML files, re-read every
//! `refresh_interval`. A file that cannot be read or parsed keeps its last good groups, as in
//! Prometheus; a file that disappears takes its groups with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::FileSdConfig;
use super::target::TargetGroup;

/// The groups of one `file_sd_configs` entry.
#[derive(Debug, Clone, Default)]
pub struct FileSd {
    patterns: Vec<String>,
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
}

/// Whether `name` matches a glob of `*` (any run) and `?` (one character).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
        return Vec::new();
    };
    if !file.contains(['*', '?']) {
        return vec![path.to_path_buf()];
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| glob_match(file.as_bytes(), n.as_bytes()))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Reads one file of target groups (YAML, of which JSON is a subset).
pub fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut groups: Vec<TargetGroup> =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    let source = path.display().to_string();
    for g in &mut groups {
        g.labels.insert("__meta_filepath".into(), source.clone());
    }
    Ok(groups)
}

impl FileSd {
    /// Discovery for one config entry; call [`FileSd::refresh`] to read the files.
    pub fn new(config: &FileSdConfig) -> FileSd {
        FileSd {
            patterns: config.files.clone(),
            groups: BTreeMap::new(),
        }
    }

    /// Re-reads every matching file; returns one message per file that failed (its previous
    /// groups are kept).
    pub fn refresh(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut next = BTreeMap::new();
        for pattern in &self.patterns {
            for path in expand(pattern) {
                match read_groups(&path) {
                    Ok(g) => {
                        next.insert(path, g);
                    }
                    Err(e) => {
                        if path.exists() {
                            if let Some(old) = self.groups.get(&path) {
                                next.insert(path.clone(), old.clone());
                            }
                            errors.push(e);
                        }
                    }
                }
            }
        }
        self.groups = next;
        errors
    }

    /// The groups read so far.
    pub fn groups(&self) -> impl Iterator<Item = &TargetGroup> {
        self.groups.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_filepath_match() {
        assert!(glob_match(b"*.yml", b"a.yml"));
        assert!(glob_match(b"t?.json", b"t1.json"));
        assert!(!glob_match(b"*.yml", b"a.yaml"));
        assert!(!glob_match(b"t?.json", b"t12.json"));
    }

    #[test]
    fn files_are_read_and_bad_files_keep_their_last_groups() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yml");
        let b = dir.path().join("b.json");
        std::fs::write(&a, "- targets: ['h1:9100']\n  labels: {rack: r1}\n").unwrap();
        std::fs::write(&b, r#"[{"targets": ["h2:9100", "h3:9100"]}]"#).unwrap();
        std::fs::write(dir.path().join("c.txt"), "not matched").unwrap();
        let cfg = FileSdConfig {
            files: vec![format!("{}/*.yml", dir.path().display()), b.display().to_string()],
            ..FileSdConfig::default()
        };
        let mut sd = FileSd::new(&cfg);
        assert!(sd.refresh().is_empty());
        let targets: Vec<_> = sd.groups().flat_map(|g| g.targets.clone()).collect();
        assert_eq!(targets, ["h1:9100", "h2:9100", "h3:9100"]);
        let g = sd.groups().next().unwrap();
        assert_eq!(g.labels["rack"], "r1");
        assert_eq!(g.labels["__meta_filepath"], a.display().to_string());

        std::fs::write(&a, "- targets: [unclosed\n").unwrap();
        let errs = sd.refresh();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("a.yml"));
        assert_eq!(
            sd.groups().flat_map(|g| g.targets.clone()).count(),
            3,
            "a.yml keeps its last groups"
        );

        std::fs::remove_file(&b).unwrap();
        assert!(sd.refresh().len() == 1);
        assert_eq!(
            sd.groups().flat_map(|g| g.targets.clone()).count(),
            1,
            "b.json's groups went with it"
        );
    }
}
