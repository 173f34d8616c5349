//! Config errors: each names the YAML path of the offending key and says what to do.

use std::fmt;

use nodetel_core::config::FieldError;

/// One problem in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted YAML path of the offending key (`exporters.prometheus.endpoint`,
    /// `service.pipelines.metrics.receivers[1]`), or the file name for problems with the file.
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// The 1-based line of the offending key in the file, when it could be found.
    pub line: Option<usize>,
}

impl ConfigError {
    /// An error at `path`, line unknown.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
            line: None,
        }
    }

    /// A component's field error, its path prefixed with the component's section
    /// (`receivers.node` + `collection_interval`).
    pub(crate) fn in_section(section: &str, error: FieldError) -> ConfigError {
        ConfigError::new(join_path(section, &error.path), error.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found in a config, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A list holding one error.
    pub fn one(error: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![error])
    }

    /// The errors as `path: message` strings, without lines (handy in tests and logs).
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(|e| format!("{}: {}", e.path, e.message)).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(errors: Vec<ConfigError>) -> ConfigErrors {
        ConfigErrors(errors)
    }
}

/// Joins a section path and a path inside it: `a.b` + `c` = `a.b.c`, `a.b` + `[0].c` = `a.b[0].c`.
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_owned()
    } else if prefix.is_empty() {
        path.to_owned()
    } else if path.starts_with('[') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}.{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_one_per_line_with_their_path() {
        let mut located = ConfigError::new("service.pipelines", "no pipelines");
        located.line = Some(7);
        let errors = ConfigErrors(vec![ConfigError::new("receivers.node.x", "unknown field"), located]);
        assert_eq!(
            errors.to_string(),
            "receivers.node.x: unknown field\nservice.pipelines (line 7): no pipelines"
        );
        assert_eq!(
            errors.messages(),
            vec!["receivers.node.x: unknown field", "service.pipelines: no pipelines"]
        );
    }

    #[test]
    fn field_errors_are_prefixed_with_their_section() {
        let e = ConfigError::in_section("exporters.prometheus", FieldError::new("endpoint", "missing"));
        assert_eq!(e.path, "exporters.prometheus.endpoint");
        let e = ConfigError::in_section("receivers.prometheus", FieldError::new("[0].job_name", "empty"));
        assert_eq!(e.path, "receivers.prometheus[0].job_name");
        let e = ConfigError::in_section("extensions.health_check", FieldError::new("", "bad"));
        assert_eq!(e.path, "extensions.health_check");
    }
}
