//! Maps check results and layers to the Dockerfile instructions that caused them.
//!
//! Settings such as `USER` or `EXPOSE` come from the last stage of the Dockerfile, or from a
//! stage it continues (`FROM base` where an earlier stage is `AS base`), or else from the base
//! image. Layers are matched through the image history's `created_by`, which the classic
//! builder, BuildKit and buildah fill with the `RUN` command or the `COPY`/`ADD` destination.

use crate::checks::CheckResult;
use crate::report::dockerfile::{Dockerfile, Instruction};

/// A result's position in the Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub instruction: &'a Instruction,
    pub reason: Reason,
}

/// The reason a result points at its instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The instruction sets the value or created the layer.
    Matched,
    /// The Dockerfile does not set the value or create the layer, so it comes from the base
    /// image, and the line is the `FROM` that names it.
    BaseImage,
    /// No instruction matched; the line is the `FROM` of the final stage.
    FinalStage,
}

impl Line<'_> {
    /// Returns a sentence that explains the line to the reader.
    pub fn sentence(&self) -> String {
        let line = self.instruction.start_line;
        match self.reason {
            Reason::Matched => format!("Dockerfile line {line}."),
            Reason::BaseImage => format!(
                "The Dockerfile does not make it, so it comes from the base image of the FROM \
                 on line {line}."
            ),
            Reason::FinalStage => {
                format!("No Dockerfile instruction matches; line {line} is the final stage's FROM.")
            }
        }
    }
}

/// The instructions of the final stage's chain and the instruction behind each layer.
pub struct SourceMap<'a> {
    /// Instructions of every stage in the chain, `FROM` lines included, in file order.
    chain: Vec<&'a Instruction>,
    /// The `FROM` of the chain's first stage, which brings in the base image.
    root_from: &'a Instruction,
    /// The `FROM` of the last stage.
    final_from: &'a Instruction,
    /// The instruction that created each layer, in layer order, where the history matched.
    layers: Vec<Option<&'a Instruction>>,
}

impl<'a> SourceMap<'a> {
    /// Builds the map, or returns `None` when the Dockerfile has no `FROM`.
    pub fn new(dockerfile: &'a Dockerfile, layer_history: &[Option<String>]) -> Option<Self> {
        let stages = dockerfile.final_stage_chain();
        let root = stages.first()?;
        let last = stages.last()?;
        let chain: Vec<&Instruction> = stages
            .iter()
            .flat_map(|stage| &dockerfile.instructions[stage.from..stage.end])
            .collect();
        let layers = match_layers(&chain, layer_history);
        Some(SourceMap {
            chain,
            root_from: &dockerfile.instructions[root.from],
            final_from: &dockerfile.instructions[last.from],
            layers,
        })
    }

    /// Returns the instruction that created `layer`, or the base image's `FROM` when the
    /// layer's history matched no instruction (as for the base image's own layers).
    pub fn layer_line(&self, layer: usize) -> Line<'a> {
        match self.layers.get(layer).copied().flatten() {
            Some(instruction) => Line {
                instruction,
                reason: Reason::Matched,
            },
            None => Line {
                instruction: self.root_from,
                reason: Reason::BaseImage,
            },
        }
    }

    /// Returns the instruction behind a failed check that is not a file check.
    pub fn check_line(&self, result: &CheckResult) -> Line<'a> {
        let found = match result.id {
            "ICS001" => Some(self.final_from),
            "ICS002" => self
                .last_matching(|i| i.keyword == "EXPOSE" && exposes_any(i, &result.description))
                .or_else(|| self.last_with_keyword(&["EXPOSE"])),
            "ICS003" => self.last_with_keyword(&["USER"]),
            "ICS004" => self.last_with_keyword(&["LABEL"]),
            "ICS005" => self.layers.get(1).copied().flatten(),
            "ICS006" => self.last_with_keyword(&["CMD", "ENTRYPOINT"]),
            _ => None,
        };
        let (instruction, reason) = match found {
            Some(instruction) => (instruction, Reason::Matched),
            // A user or port that the Dockerfile never sets comes from the base image.
            None if matches!(result.id, "ICS002" | "ICS003") => (self.root_from, Reason::BaseImage),
            None => (self.final_from, Reason::FinalStage),
        };
        Line {
            instruction,
            reason,
        }
    }

    fn last_with_keyword(&self, keywords: &[&str]) -> Option<&'a Instruction> {
        self.last_matching(|i| keywords.contains(&i.keyword.as_str()))
    }

    fn last_matching(&self, test: impl Fn(&Instruction) -> bool) -> Option<&'a Instruction> {
        self.chain.iter().rev().find(|i| test(i)).copied()
    }
}

/// Tells whether an `EXPOSE` instruction names a port key (`22/tcp`) that the failed
/// ICS002 result lists in its description.
// NOTE: this reads the port keys from the description's text, because the check result
// carries no structured list of the critical ports.
fn exposes_any(expose: &Instruction, description: &str) -> bool {
    let listed: Vec<&str> = description
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|word| word.trim_end_matches('.'))
        .collect();
    expose.arguments.split_whitespace().any(|port| {
        let key = if port.contains('/') {
            port.to_ascii_lowercase()
        } else {
            format!("{port}/tcp")
        };
        listed.contains(&key.as_str())
    })
}

/// Pairs each layer with the instruction that created it. Instructions are matched in file
/// order, so two identical `RUN` lines map to the layers in the same order.
///
/// Builders that squash several instructions into one layer (buildah without `--layers`)
/// record the layer under the last instruction, such as `CMD`. Such a layer is paired with
/// the first `RUN`, `COPY`, `ADD` or `WORKDIR` since the previous layer.
// NOTE: a squashed layer with several of those instructions points at the first of them,
// whichever one added the file. A base image layer whose history reads like one of this
// Dockerfile's instructions (`ADD file:... in /` against `ADD rootfs.tar /`) is paired with it.
fn match_layers<'a>(
    chain: &[&'a Instruction],
    layer_history: &[Option<String>],
) -> Vec<Option<&'a Instruction>> {
    let mut next = 0;
    layer_history
        .iter()
        .map(|created_by| {
            let created_by = normalise_created_by(created_by.as_deref()?);
            let rest = &chain[next.min(chain.len())..];
            let offset = rest
                .iter()
                .position(|i| created(i, &created_by) || recorded(i, &created_by))?;
            let matched = rest[offset];
            let instruction = if is_layer_instruction(matched) {
                matched
            } else {
                rest[..offset]
                    .iter()
                    .copied()
                    .find(|i| is_layer_instruction(i))
                    .unwrap_or(matched)
            };
            next += offset + 1;
            Some(instruction)
        })
        .collect()
}

fn is_layer_instruction(instruction: &Instruction) -> bool {
    matches!(
        instruction.keyword.as_str(),
        "RUN" | "COPY" | "ADD" | "WORKDIR"
    )
}

/// Tells whether the history entry records an instruction that changes only the config, as
/// the classic builder and buildah write it: `/bin/sh -c #(nop) CMD ["/bin/bash"]`.
fn recorded(instruction: &Instruction, created_by: &str) -> bool {
    if is_layer_instruction(instruction) || instruction.keyword == "FROM" {
        return false;
    }
    let Some((_, recorded)) = created_by.split_once("#(nop) ") else {
        return false;
    };
    let written = collapse_whitespace(&format!(
        "{} {}",
        instruction.keyword, instruction.arguments
    ));
    recorded.trim() == written
}

/// Collapses white space and removes BuildKit's ` # buildkit` suffix, its `RUN` prefix, and
/// the build arguments that BuildKit and the classic builder put before the command
/// (`|2 A=1 B=2 /bin/sh -c ...`).
fn normalise_created_by(created_by: &str) -> String {
    let text = collapse_whitespace(created_by);
    let text = text.strip_suffix(" # buildkit").unwrap_or(&text);
    let run = text.strip_prefix("RUN ").unwrap_or(text);
    let mut words = run.split(' ').peekable();
    if let Some(count) = words
        .peek()
        .and_then(|word| word.strip_prefix('|'))
        .and_then(|count| count.parse::<usize>().ok())
    {
        words.next();
        for _ in 0..count {
            words.next();
        }
    }
    words.collect::<Vec<_>>().join(" ")
}

/// Tells whether `instruction` made the layer whose normalised history is `created_by`.
fn created(instruction: &Instruction, created_by: &str) -> bool {
    if !is_layer_instruction(instruction) {
        return false;
    }
    match instruction.keyword.as_str() {
        "RUN" => {
            let command = run_command(&instruction.arguments);
            !command.is_empty()
                && (created_by == command || created_by.ends_with(&format!(" -c {command}")))
        }
        "COPY" | "ADD" => {
            let words: Vec<&str> = created_by.split(' ').collect();
            let keyword = instruction.keyword.as_str();
            words.contains(&keyword)
                && destination(&instruction.arguments).is_some_and(|destination| {
                    words.last().map(|word| word.trim_end_matches('/'))
                        == Some(destination.trim_end_matches('/'))
                })
        }
        "WORKDIR" => created_by == format!("WORKDIR {}", instruction.arguments.trim()),
        _ => false,
    }
}

/// Returns a `RUN` instruction's command as the shell receives it: flags such as `--mount`
/// removed, the exec form's JSON array joined with spaces, white space collapsed.
fn run_command(arguments: &str) -> String {
    let mut rest = arguments.trim_start();
    while rest.starts_with("--") {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, after)| after.trim_start());
    }
    if let Ok(words) = serde_json::from_str::<Vec<String>>(rest) {
        return collapse_whitespace(&words.join(" "));
    }
    collapse_whitespace(rest)
}

/// Returns the destination of a `COPY` or `ADD`: the last word, or the last element of the
/// JSON form.
fn destination(arguments: &str) -> Option<String> {
    let words: Vec<&str> = arguments
        .split_whitespace()
        .filter(|word| !word.starts_with("--"))
        .collect();
    let rest = words.join(" ");
    if let Ok(items) = serde_json::from_str::<Vec<String>>(&rest) {
        return items.last().cloned();
    }
    words.last().map(|word| word.to_string())
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = "\
FROM golang:1.22 AS build
RUN go build -o /out/app .

FROM debian:12 AS base
RUN apt-get update \\
 && apt-get install -y sudo
WORKDIR /app

FROM base
COPY --from=build /out/app /app/app
EXPOSE 8080 22
USER app
RUN [\"chmod\", \"u+s\", \"/app/app\"]
";

    fn line_of(map: &SourceMap, layer: usize) -> (usize, bool) {
        let line = map.layer_line(layer);
        (line.instruction.start_line, line.reason == Reason::Matched)
    }

    #[test]
    fn buildkit_history_maps_to_lines() {
        let dockerfile = Dockerfile::parse(DOCKERFILE);
        let history = [
            Some("/bin/sh -c #(nop) ADD file:4f1d in / ".to_string()),
            Some(
                "RUN /bin/sh -c apt-get update  && apt-get install -y sudo # buildkit".to_string(),
            ),
            Some("WORKDIR /app # buildkit".to_string()),
            Some("COPY /out/app /app/app # buildkit".to_string()),
            Some("RUN chmod u+s /app/app # buildkit".to_string()),
        ];
        let map = SourceMap::new(&dockerfile, &history).expect("the Dockerfile has a FROM");
        assert_eq!(line_of(&map, 0), (4, false));
        assert_eq!(line_of(&map, 1), (5, true));
        assert_eq!(line_of(&map, 2), (7, true));
        assert_eq!(line_of(&map, 3), (10, true));
        assert_eq!(line_of(&map, 4), (13, true));
    }

    #[test]
    fn classic_and_buildah_history_maps_to_lines() {
        let dockerfile = Dockerfile::parse(DOCKERFILE);
        let history = [
            None,
            Some("|1 DEBUG=1 /bin/sh -c apt-get update && apt-get install -y sudo".to_string()),
            Some("/bin/sh -c #(nop) COPY file:9a8b in /app/app ".to_string()),
        ];
        let map = SourceMap::new(&dockerfile, &history).expect("the Dockerfile has a FROM");
        assert_eq!(line_of(&map, 1), (5, true));
        assert_eq!(line_of(&map, 2), (10, true));
    }

    #[test]
    fn squashed_layer_maps_to_first_run() {
        let dockerfile = Dockerfile::parse(
            "FROM base\nLABEL a=\"1\" \\\n      b=\"2\"\nRUN apt-get install -y sudo\nEXPOSE 22\n\
             CMD [\"/bin/bash\"]\n",
        );
        let history = [
            Some("/bin/sh".to_string()),
            Some("/bin/sh -c #(nop) CMD [\"/bin/bash\"]".to_string()),
        ];
        let map = SourceMap::new(&dockerfile, &history).expect("the Dockerfile has a FROM");
        assert_eq!(line_of(&map, 0), (1, false));
        assert_eq!(line_of(&map, 1), (4, true));
    }

    #[test]
    fn build_arguments_prefix_is_removed() {
        assert_eq!(
            normalise_created_by("RUN |2 A=1 B=2 /bin/sh -c make  install # buildkit"),
            "/bin/sh -c make install"
        );
    }

    #[test]
    fn run_flags_are_removed() {
        assert_eq!(
            run_command("--mount=type=cache,target=/root/.cache  --network=none  make"),
            "make"
        );
    }

    #[test]
    fn settings_map_to_final_chain() {
        let dockerfile = Dockerfile::parse(DOCKERFILE);
        let map = SourceMap::new(&dockerfile, &[]).expect("the Dockerfile has a FROM");
        let result = |id: &'static str, description: &str| CheckResult {
            title: "",
            severity: crate::checks::Severity::High,
            pass: false,
            description: description.to_string(),
            mitigation: "",
            files: None,
            id,
            present_in_final_image: None,
            check_severity: crate::checks::Severity::High,
            findings: vec![],
        };
        let line = |id, description| {
            map.check_line(&result(id, description))
                .instruction
                .start_line
        };
        assert_eq!(line("ICS002", "The image exposes 22/tcp."), 11);
        assert_eq!(line("ICS003", "The user is root."), 12);
        assert_eq!(line("ICS001", "The image is tagged latest."), 9);
        assert_eq!(line("ICS006", "No CMD."), 9);
    }
}
