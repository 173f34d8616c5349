//! `scontrol -d show job -o [ID]`: a job's identity and the GPUs it holds on each node.

use super::error::ParseError;
use super::{gres, hostlist, kv};

/// The arguments for one job's detail (`scontrol -d show job -o <id>`).
pub fn args(job_id: &str) -> [&str; 5] {
    ["-d", "show", "job", "-o", job_id]
}

/// One job as `scontrol -d show job -o` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobDetail {
    /// `JobId`.
    pub job_id: String,
    /// `JobName`.
    pub name: String,
    /// The user name of `UserId=name(uid)`.
    pub user: String,
    /// The uid of `UserId=name(uid)`.
    pub uid: Option<u32>,
    /// `Partition`.
    pub partition: String,
    /// `JobState` (`RUNNING`, `PENDING`, ...).
    pub state: String,
    /// `NodeList`.
    pub node_list: String,
    /// Per node group: the group's host list and the GPU indices each of its nodes holds.
    pub node_gpus: Vec<(String, Vec<u32>)>,
}

impl JobDetail {
    /// The GPU indices this job holds on `node` (from the `-d` detail `GRES=gpu:N(IDX:...)`).
    pub fn gpus_on(&self, node: &str) -> Vec<u32> {
        self.node_gpus
            .iter()
            .filter(|(nodes, _)| hostlist::contains(nodes, node))
            .flat_map(|(_, idx)| idx.iter().copied())
            .collect()
    }
}

/// Parses the output: one job per non-empty line. A line without `JobId=` is an error.
pub fn parse(text: &str) -> Result<Vec<JobDetail>, ParseError> {
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields = kv::fields(line);
        let Some(job_id) = kv::get(&fields, "JobId").filter(|id| !id.is_empty()) else {
            return Err(ParseError::new(
                i + 1,
                line,
                "expected a JobId= field; was -o (one line per job) passed?",
            ));
        };
        let (user, uid) = kv::name_and_id(kv::get(&fields, "UserId").unwrap_or(""));
        let mut node_gpus = Vec::new();
        let mut group: Option<&str> = None;
        for (k, v) in &fields {
            match *k {
                "Nodes" => group = Some(v),
                "GRES" => {
                    if let Some(nodes) = group.take() {
                        node_gpus.push((nodes.to_owned(), gres::gpu_indices(v)));
                    }
                }
                _ => {}
            }
        }
        jobs.push(JobDetail {
            job_id: job_id.to_owned(),
            name: kv::get(&fields, "JobName").unwrap_or("").to_owned(),
            user: user.to_owned(),
            uid,
            partition: kv::get(&fields, "Partition").unwrap_or("").to_owned(),
            state: kv::get(&fields, "JobState").unwrap_or("").to_owned(),
            node_list: kv::get(&fields, "NodeList").unwrap_or("").to_owned(),
            node_gpus,
        });
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../testdata/slurm/scontrol_show_job_-d_-o.txt");

    #[test]
    fn recorded_jobs_parse_with_their_gpus() {
        let jobs = parse(FIXTURE).unwrap();
        let ids: Vec<_> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7"]);
        let train = &jobs[2];
        assert_eq!(
            (
                train.name.as_str(),
                train.user.as_str(),
                train.partition.as_str(),
                train.state.as_str()
            ),
            ("nt-train", "root", "gpu", "RUNNING")
        );
        assert_eq!(train.gpus_on("vm"), [0, 1]);
        assert_eq!(train.gpus_on("other"), Vec::<u32>::new());
        let infer = &jobs[4];
        assert_eq!((infer.user.as_str(), infer.uid), ("nobody", Some(65534)));
        assert_eq!(infer.gpus_on("vm"), [2, 3]);
        assert_eq!(jobs[3].gpus_on("vm"), Vec::<u32>::new(), "a CPU job holds no GPU");
        assert!(jobs[5].node_gpus.is_empty(), "a pending job has no node detail");
    }

    #[test]
    fn typed_gpus_and_multi_node_groups_parse() {
        let line = "JobId=9 JobName=big run UserId=alice(1000) Partition=p JobState=RUNNING NodeList=n[1-3] \
                    JOB_GRES=gpu:h100:6 Nodes=n[1-2] CPU_IDs=0-1 Mem=0 GRES=gpu:h100:2(IDX:0-1) \
                    Nodes=n3 CPU_IDs=0 Mem=0 GRES=gpu:h100:2(IDX:4,6) MinCPUsNode=1";
        let jobs = parse(line).unwrap();
        assert_eq!(jobs[0].name, "big run");
        assert_eq!(jobs[0].gpus_on("n2"), [0, 1]);
        assert_eq!(jobs[0].gpus_on("n3"), [4, 6]);
    }

    #[test]
    fn a_line_without_job_id_is_reported_with_its_number() {
        let err = parse("JobId=1 JobName=a\nNo jobs in the system\n").unwrap_err();
        assert_eq!(err.line_no, 2);
    }

    #[test]
    fn mutated_output_never_panics() {
        let mut seed = 0x1234_5678u32;
        for line in FIXTURE.lines() {
            for _ in 0..50 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let cut = seed as usize % (line.len() + 1);
                let mutated: String = line
                    .char_indices()
                    .map(|(i, c)| {
                        if i % 7 == cut % 7 {
                            ['=', ' ', '(', ')', ','][i % 5]
                        } else {
                            c
                        }
                    })
                    .collect();
                let _ = parse(&mutated);
                let _ = parse(&line[..cut]);
            }
        }
    }
}
