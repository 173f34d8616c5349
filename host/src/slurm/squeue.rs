//! `squeue` outputs: the jobs running on one node, and the generic delimited lines the cluster
//! metrics use.

use super::error::ParseError;

/// The `-o` format of [`node_jobs_args`]: the name comes last because it may hold the separator.
pub const NODE_JOBS_FORMAT: &str = "%A|%u|%P|%T|%j";

/// Arguments listing the running (and completing) jobs on `node`.
pub fn node_jobs_args(node: &str) -> [&str; 7] {
    [
        "-h",
        "-w",
        node,
        "-t",
        "RUNNING,COMPLETING,SUSPENDED",
        "-o",
        NODE_JOBS_FORMAT,
    ]
}

/// A job on this node as `squeue -w <node>` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeJob {
    /// `%A`: the job id.
    pub job_id: String,
    /// `%u`: the user name.
    pub user: String,
    /// `%P`: the partition.
    pub partition: String,
    /// `%T`: the state (`RUNNING`, ...).
    pub state: String,
    /// `%j`: the job name.
    pub name: String,
}

/// Parses the output of [`node_jobs_args`].
pub fn parse_node_jobs(text: &str) -> Result<Vec<NodeJob>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() {
            continue;
        }
        let mut f = line.splitn(5, '|');
        let (Some(id), Some(user), Some(partition), Some(state), Some(name)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(ParseError::new(
                i + 1,
                line,
                format!("expected 5 fields of {NODE_JOBS_FORMAT}"),
            ));
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit() || b == b'_' || b == b'+') {
            return Err(ParseError::new(i + 1, line, "the job id (%A) is not a number"));
        }
        out.push(NodeJob {
            job_id: id.to_owned(),
            user: user.to_owned(),
            partition: partition.to_owned(),
            state: state.to_owned(),
            name: name.trim_end().to_owned(),
        });
    }
    Ok(out)
}

/// Splits each non-empty line at `sep` into exactly `n` trimmed fields (the last one keeps any
/// further separators). Leading spaces, which the exporters' `"-o %A,..."` formats produce, are
/// dropped.
pub fn split_lines(text: &str, sep: char, n: usize) -> Result<Vec<Vec<&str>>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.splitn(n, sep).map(str::trim).collect();
        if fields.len() != n {
            return Err(ParseError::new(
                i + 1,
                raw,
                format!("expected {n} fields separated by {sep:?}"),
            ));
        }
        out.push(fields);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_jobs_parse_and_keep_separators_in_names() {
        let jobs = parse_node_jobs("3|root|gpu|RUNNING|nt-train\n5|nobody|debug|RUNNING|a|b c \n").unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].name, "nt-train");
        assert_eq!((jobs[1].user.as_str(), jobs[1].name.as_str()), ("nobody", "a|b c"));
    }

    #[test]
    fn bad_node_job_lines_are_reported() {
        assert_eq!(parse_node_jobs("3|root\n").unwrap_err().line_no, 1);
        assert!(parse_node_jobs("x|root|p|R|n\n").is_err());
        assert!(parse_node_jobs("\n\n").unwrap().is_empty());
    }

    #[test]
    fn exporter_style_lines_split() {
        let text = include_str!("../../testdata/slurm/squeue_-a_-r_-h_-o~%A,%T,%r_--states=all.txt");
        let rows = split_lines(text, ',', 3).unwrap();
        assert_eq!(rows[0], ["1", "COMPLETED", "None"]);
        assert_eq!(rows.len(), 7);
        assert!(split_lines("a,b\n", ',', 3).is_err());
    }
}
