//! Finds the line of a YAML path in the source text, so errors can point at it.
//!
//! The parsed YAML value keeps no positions, so this walks the text: block mappings by
//! indentation, block sequences by their `- ` items. Where the path enters flow style
//! (`{...}`, `[...]`) it stops and answers the deepest line it found, which is the line the
//! flow collection starts on. Best effort: `None` when even the first key is not found.

/// The 1-based line of `path` (`service.pipelines.metrics.receivers[1]`) in `text`.
pub(crate) fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found: Option<usize> = None;
    // The block we search: lines after `start` indented more than `parent_indent`.
    let mut start = 0usize;
    let mut parent_indent: isize = -1;
    // After a sequence item, its first key sits on the item's own line, after the `- `.
    let mut item_line = false;
    for segment in segments(path) {
        let hit = match segment {
            Segment::Key(key) => find_key(&lines, start, parent_indent, item_line, key),
            Segment::Index(i) => find_item(&lines, start, parent_indent, i),
        };
        let Some((line, indent)) = hit else { break };
        found = Some(line + 1);
        item_line = matches!(segment, Segment::Index(_));
        if item_line {
            start = line;
            parent_indent = indent as isize - 1;
        } else {
            start = line + 1;
            parent_indent = indent as isize;
        }
    }
    found
}

pub(crate) enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits a path into its keys and sequence indices.
pub(crate) fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(body) = rest.strip_prefix('[') {
            let Some(end) = body.find(']') else { break };
            if let Ok(i) = body[..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &body[end + 1..];
        }
    }
    out
}

/// Content of a line after its indentation and any `- ` sequence markers, with its column.
fn content(line: &str) -> (usize, &str) {
    let mut col = line.len() - line.trim_start_matches(' ').len();
    let mut rest = &line[col..];
    while let Some(r) = rest.strip_prefix("- ") {
        let r2 = r.trim_start_matches(' ');
        col += rest.len() - r2.len();
        rest = r2;
    }
    (col, rest)
}

fn is_blank(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

fn find_key(lines: &[&str], start: usize, parent: isize, item_line: bool, key: &str) -> Option<(usize, usize)> {
    for (n, line) in lines.iter().enumerate().skip(start) {
        if is_blank(line) {
            continue;
        }
        let (col, rest) = content(line);
        let indent = line.len() - line.trim_start().len();
        let level = if item_line && n == start { col } else { indent };
        if (level as isize) <= parent {
            return None;
        }
        let k = rest.split_once(':').map(|(k, _)| k.trim().trim_matches(['"', '\'']));
        if k == Some(key) {
            return Some((n, col));
        }
    }
    None
}

fn find_item(lines: &[&str], start: usize, parent: isize, index: usize) -> Option<(usize, usize)> {
    let mut seen = 0;
    let mut item_indent: Option<usize> = None;
    for (n, line) in lines.iter().enumerate().skip(start) {
        if is_blank(line) {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        // Block sequences under a key may sit at the key's own indentation.
        if (indent as isize) < parent || ((indent as isize) == parent && !trimmed.starts_with('-')) {
            return None;
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            match item_indent {
                None => item_indent = Some(indent),
                Some(i) if i != indent => continue,
                Some(_) => {}
            }
            if seen == index {
                return Some((n, content(line).0));
            }
            seen += 1;
        } else if item_indent.is_none() {
            // Not a block sequence (flow style or a scalar): stop here.
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
receivers:
  node:
    collection_interval: 15s
  prometheus:
    config:
      scrape_configs:
        - job_name: a
          static_configs: [{targets: ['x:1']}]
        - job_name: b
          scrape_interval: 5s

exporters:
  debug: {verbosity: loud}
service:
  # comment
  pipelines:
    metrics:
      receivers: [node, nodee]
      exporters:
        - debug
        - prometheus
";

    #[test]
    fn block_keys_are_found_at_their_line() {
        assert_eq!(line_of(DOC, "receivers.node.collection_interval"), Some(3));
        assert_eq!(line_of(DOC, "receivers.prometheus"), Some(4));
        assert_eq!(line_of(DOC, "service.pipelines.metrics"), Some(17));
    }

    #[test]
    fn sequence_items_are_found_by_index() {
        assert_eq!(
            line_of(DOC, "receivers.prometheus.config.scrape_configs[1].job_name"),
            Some(9)
        );
        assert_eq!(
            line_of(DOC, "receivers.prometheus.config.scrape_configs[1].scrape_interval"),
            Some(10)
        );
        assert_eq!(line_of(DOC, "service.pipelines.metrics.exporters[1]"), Some(21));
        assert_eq!(
            line_of(DOC, "receivers.prometheus.config.scrape_configs[0].scrape_interval"),
            Some(7)
        );
        let flush = "list:\n- a: 1\n  b: 2\n- a: 3\nnext: 1\n";
        assert_eq!(line_of(flush, "list[1].a"), Some(4));
        assert_eq!(line_of(flush, "list[0].b"), Some(3));
    }

    #[test]
    fn flow_style_answers_the_line_where_it_starts() {
        assert_eq!(line_of(DOC, "service.pipelines.metrics.receivers[1]"), Some(18));
        assert_eq!(line_of(DOC, "exporters.debug.verbosity"), Some(13));
    }

    #[test]
    fn a_path_that_is_not_in_the_text_has_no_line() {
        assert_eq!(line_of(DOC, "extensions.health_check"), None);
        assert_eq!(line_of(DOC, "(top level)"), None);
    }
}
