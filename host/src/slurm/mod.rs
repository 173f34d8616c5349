//! The Slurm client: runs Slurm's command-line tools (argument vectors, a timeout, an optional
//! binary directory) and parses their output into typed facts; finds task processes in /proc.
//!
//! Parsers take the text and return typed rows or a [`ParseError`] naming the line; a caller
//! turns it into a [`SlurmError`] with the command attached. No parser panics on any input.

pub mod cli;
pub mod error;
pub mod gres;
pub mod hostlist;
pub mod job;
pub mod kv;
pub mod listpids;
pub mod sdiag;
pub mod sinfo;
pub mod squeue;
pub mod tasks;

pub use cli::{CommandRunner, SlurmCli, StaticRunner, command_line};
pub use error::{ParseError, SlurmError};

#[cfg(test)]
mod tests {
    //! Every parser on every recorded output, whole, truncated and with bytes swapped for the
    //! separators the parsers split on: errors are fine, panics are not.

    use super::*;

    const FIXTURES: &[&str] = &[
        include_str!("../../testdata/slurm/scontrol_show_job_-d_-o.txt"),
        include_str!("../../testdata/slurm/typed-h100/scontrol_show_job_-d_-o.txt"),
        include_str!("../../testdata/slurm/scontrol_listpids.txt"),
        include_str!("../../testdata/slurm/sdiag.txt"),
        include_str!("../../testdata/slurm/squeue-h-w-HOST.txt"),
        include_str!("../../testdata/slurm/scontrol_-d_show_node_-o.txt"),
        include_str!("../../testdata/slurm/sinfo_-h_-N_-O_NodeList,AllocMem,Memory,CPUsState,StateLong.txt"),
        include_str!(
            "../../testdata/slurm/typed-h100/sinfo_-a_-h_--Format=Nodes:~,Gres:~,GresUsed:_--state=idle,allocated.txt"
        ),
        include_str!("../../testdata/slurm/proc-4rank/rank0.environ.txt"),
    ];

    fn parse_all(text: &str) {
        let _ = job::parse(text);
        let _ = listpids::parse(text);
        let _ = sdiag::parse(text);
        let _ = squeue::parse_node_jobs(text);
        let _ = squeue::split_lines(text, '|', 5);
        let _ = sinfo::parse_node_rows(text);
        let _ = sinfo::parse_gres_rows(text);
        let _ = sinfo::parse_cpus_output(text);
        let _ = tasks::parse_environ(text.as_bytes());
        for line in text.lines() {
            let _ = kv::fields(line);
            let _ = gres::parse_list(line);
            let _ = hostlist::contains(line, "vm");
            let _ = hostlist::expand(line, 64);
        }
    }

    #[test]
    fn no_parser_panics_on_mutated_recorded_output() {
        let mut seed = 0x9e37_79b9u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        let specials = [
            b'=', b' ', b'(', b')', b',', b'|', b'/', b'[', b']', b'-', b':', b'\n', b'\0', 0xff,
        ];
        for text in FIXTURES {
            parse_all(text);
            for _ in 0..200 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..(1 + next() % 8) {
                    let at = next() % bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(at) {
                        *b = specials[next() % specials.len()];
                    }
                }
                bytes.truncate(next() % (bytes.len() + 1));
                parse_all(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
