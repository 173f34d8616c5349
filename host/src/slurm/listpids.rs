//! `scontrol listpids`: which local process belongs to which job step, with its task ids.
//! It talks only to the local slurmstepd sockets, so it works while slurmctld is unreachable.

use super::error::ParseError;

/// One row of `scontrol listpids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPid {
    /// The process id.
    pub pid: u32,
    /// The job id.
    pub job_id: String,
    /// The step id (`0`, `batch`, `extern`).
    pub step: String,
    /// `LOCALID` (SLURM_LOCALID), `None` for helper processes (`-`).
    pub local_id: Option<u32>,
    /// `GLOBALID` (SLURM_PROCID), `None` for helper processes (`-`).
    pub global_id: Option<u32>,
}

/// Parses the table. The header is skipped; rows have trailing spaces.
pub fn parse(text: &str) -> Result<Vec<StepPid>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_ascii_whitespace().collect();
        if cols.is_empty() || cols[0] == "PID" {
            continue;
        }
        let [pid, job, step, local, global] = cols[..] else {
            return Err(ParseError::new(
                i + 1,
                line,
                "expected PID JOBID STEPID LOCALID GLOBALID",
            ));
        };
        let Ok(pid) = pid.parse() else {
            return Err(ParseError::new(i + 1, line, "the PID is not a number"));
        };
        out.push(StepPid {
            pid,
            job_id: job.to_owned(),
            step: step.to_owned(),
            local_id: local.parse().ok(),
            global_id: global.parse().ok(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_table_parses() {
        let rows = parse(include_str!("../../testdata/slurm/scontrol_listpids.txt")).unwrap();
        assert_eq!(rows.len(), 11);
        let r = rows.iter().find(|r| r.pid == 1214).unwrap();
        assert_eq!(
            (r.job_id.as_str(), r.step.as_str(), r.local_id, r.global_id),
            ("5", "0", Some(1), Some(1))
        );
        let helper = rows.iter().find(|r| r.pid == 1244).unwrap();
        assert_eq!((helper.local_id, helper.global_id), (None, None));
    }

    #[test]
    fn malformed_rows_are_errors_not_panics() {
        assert!(parse("PID JOBID\n12 3\n").is_err());
        assert!(parse("x 3 0 0 0\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }
}
