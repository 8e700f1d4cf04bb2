//! A small Dockerfile parser that keeps line numbers, so reports can point at the instruction
//! behind a finding.
//!
//! It reads the syntax of BuildKit's Dockerfile frontend. Parser directives come first, and
//! `# escape=` changes the line-continuation character. Comment and empty lines inside a
//! continuation are dropped. Here-documents after `RUN`, `COPY` and `ADD` run to their
//! terminator (`<<EOF` ... `EOF`), and `<<-EOF` strips leading tabs. It does not expand
//! `ARG` or `ENV` variables.

use std::path::Path;

/// One instruction with the lines it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The instruction keyword in upper case, e.g. `RUN`.
    pub keyword: String,
    /// Everything after the keyword, with continuation lines joined and the continuation
    /// characters removed. Here-document bodies are not included.
    pub arguments: String,
    /// 1-based line of the keyword.
    pub start_line: usize,
    /// 1-based last line, including continuation lines and here-documents.
    pub end_line: usize,
}

/// A build stage: a `FROM` instruction and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Index of the `FROM` instruction in [`Dockerfile::instructions`].
    pub from: usize,
    /// One past the index of the stage's last instruction.
    pub end: usize,
    /// The image or stage name after `FROM`.
    pub base: String,
    /// The name after `AS`, lowercased as BuildKit compares it.
    pub name: Option<String>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    /// Reads and parses the Dockerfile at `path`.
    pub fn read(path: &Path) -> std::io::Result<Dockerfile> {
        let text = std::fs::read(path)?;
        Ok(Dockerfile::parse(&String::from_utf8_lossy(&text)))
    }

    /// Parses `text`. Lines that are not valid instructions are kept as instructions with
    /// whatever keyword they start with, as a line-number map needs no validation.
    pub fn parse(text: &str) -> Dockerfile {
        let lines: Vec<&str> = text
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .collect();
        let (escape, first_line) = parser_directives(&lines);
        let mut instructions = Vec::new();
        let mut index = first_line;
        while index < lines.len() {
            let line = lines[index].trim();
            if line.is_empty() || line.starts_with('#') {
                index += 1;
                continue;
            }
            let (instruction, next) = read_instruction(&lines, index, escape);
            instructions.push(instruction);
            index = next;
        }
        Dockerfile { instructions }
    }

    /// Returns the build stages in file order.
    pub fn stages(&self) -> Vec<Stage> {
        let starts: Vec<usize> = self
            .instructions
            .iter()
            .enumerate()
            .filter(|(_, instruction)| instruction.keyword == "FROM")
            .map(|(index, _)| index)
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(position, &from)| {
                let end = starts
                    .get(position + 1)
                    .copied()
                    .unwrap_or(self.instructions.len());
                let (base, name) = from_arguments(&self.instructions[from].arguments);
                Stage {
                    from,
                    end,
                    base,
                    name,
                }
            })
            .collect()
    }

    /// Returns the stages that make up the last stage, from the first image-based ancestor to
    /// the last stage itself. `FROM builder` continues the stage named `builder`, so that
    /// stage's instructions are part of the image too.
    pub fn final_stage_chain(&self) -> Vec<Stage> {
        let stages = self.stages();
        let Some(mut current) = stages.len().checked_sub(1) else {
            return Vec::new();
        };
        let mut chain = vec![stages[current].clone()];
        loop {
            let base = stages[current].base.to_ascii_lowercase();
            let parent = stages[..current]
                .iter()
                .rposition(|stage| stage.name.as_deref() == Some(base.as_str()));
            match parent {
                Some(parent) => {
                    chain.push(stages[parent].clone());
                    current = parent;
                }
                None => break,
            }
        }
        chain.reverse();
        chain
    }
}

/// Reads the parser directives at the top of the file. Returns the escape character and the
/// index of the first line after them.
fn parser_directives(lines: &[&str]) -> (char, usize) {
    let mut escape = '\\';
    let mut index = 0;
    while let Some(line) = lines.get(index) {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = directive.split_once('=') else {
            break;
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        if name.eq_ignore_ascii_case("escape") && value.trim() == "`" {
            escape = '`';
        }
        index += 1;
    }
    (escape, index)
}

/// Reads the instruction that starts at `lines[start]`. Returns it and the index of the line
/// after it.
fn read_instruction(lines: &[&str], start: usize, escape: char) -> (Instruction, usize) {
    let mut text = String::new();
    let mut index = start;
    let mut end_line;
    loop {
        let line = lines[index].trim_end();
        end_line = index;
        index += 1;
        match line.strip_suffix(escape) {
            Some(joined) => text.push_str(joined),
            None => {
                text.push_str(line);
                break;
            }
        }
        // Comment and empty lines inside a continuation do not end it.
        while index < lines.len() && is_blank_or_comment(lines[index]) {
            index += 1;
        }
        if index >= lines.len() {
            break;
        }
    }
    let text = text.trim_start();
    let (keyword, arguments) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = keyword.to_ascii_uppercase();
    let arguments = arguments.trim().to_string();
    if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
        for (terminator, strip_tabs) in heredoc_terminators(&arguments) {
            while index < lines.len() {
                let line = lines[index];
                end_line = index;
                index += 1;
                let line = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if line == terminator {
                    break;
                }
            }
        }
    }
    let instruction = Instruction {
        keyword,
        arguments,
        start_line: start + 1,
        end_line: end_line + 1,
    };
    (instruction, index)
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Returns the terminator words of the here-documents that `arguments` opens (`<<EOF`,
/// `<<-EOF`, `<<"EOF"`), with whether leading tabs are stripped before comparing.
fn heredoc_terminators(arguments: &str) -> Vec<(String, bool)> {
    let mut terminators = Vec::new();
    let mut rest = arguments;
    while let Some(position) = rest.find("<<") {
        rest = &rest[position + 2..];
        let strip_tabs = rest.starts_with('-');
        let word = rest.trim_start_matches('-');
        let word = word.trim_start_matches(['"', '\'']);
        let name: String = word
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            terminators.push((name, strip_tabs));
        }
    }
    terminators
}

/// Splits `FROM [--platform=...] IMAGE [AS NAME]` into the image and the lowercased name.
fn from_arguments(arguments: &str) -> (String, Option<String>) {
    let words: Vec<&str> = arguments
        .split_whitespace()
        .filter(|word| !word.starts_with("--"))
        .collect();
    let base = words.first().copied().unwrap_or_default().to_string();
    let name = match words.as_slice() {
        [_, keyword, name, ..] if keyword.eq_ignore_ascii_case("as") => {
            Some(name.to_ascii_lowercase())
        }
        _ => None,
    };
    (base, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords_and_lines(dockerfile: &Dockerfile) -> Vec<(&str, usize, usize)> {
        dockerfile
            .instructions
            .iter()
            .map(|i| (i.keyword.as_str(), i.start_line, i.end_line))
            .collect()
    }

    #[test]
    fn continuation_and_comment_lines() {
        let text = "# syntax=docker/dockerfile:1\n\
                    FROM debian:12\n\
                    \n\
                    # install\n\
                    RUN apt-get update \\\n\
                    # a comment inside the continuation\n\
                    \n\
                    \x20&& apt-get install -y sudo\n\
                    user app:app\n\
                    EXPOSE 22 8080/tcp\r\n";
        let dockerfile = Dockerfile::parse(text);
        assert_eq!(
            keywords_and_lines(&dockerfile),
            [
                ("FROM", 2, 2),
                ("RUN", 5, 8),
                ("USER", 9, 9),
                ("EXPOSE", 10, 10)
            ]
        );
        assert_eq!(
            dockerfile.instructions[1].arguments,
            "apt-get update  && apt-get install -y sudo"
        );
        assert_eq!(dockerfile.instructions[3].arguments, "22 8080/tcp");
    }

    #[test]
    fn escape_directive_changes_continuation() {
        let text = "# escape=`\nFROM windows\nRUN dir `\n  c:\\ \nUSER app\n";
        let dockerfile = Dockerfile::parse(text);
        assert_eq!(
            keywords_and_lines(&dockerfile),
            [("FROM", 2, 2), ("RUN", 3, 4), ("USER", 5, 5)]
        );
    }

    #[test]
    fn directive_after_comment_is_a_comment() {
        let text = "# a comment\n# escape=`\nFROM a\nRUN x \\\n y\n";
        let dockerfile = Dockerfile::parse(text);
        assert_eq!(
            keywords_and_lines(&dockerfile),
            [("FROM", 3, 3), ("RUN", 4, 5)]
        );
    }

    #[test]
    fn heredoc_body_is_not_instructions() {
        let text =
            "FROM a\nRUN <<EOF\nUSER root\nEOF\nCOPY <<-\"END\" /x\n\tEXPOSE 22\n\tEND\nUSER app\n";
        let dockerfile = Dockerfile::parse(text);
        assert_eq!(
            keywords_and_lines(&dockerfile),
            [
                ("FROM", 1, 1),
                ("RUN", 2, 4),
                ("COPY", 5, 7),
                ("USER", 8, 8)
            ]
        );
    }

    #[test]
    fn final_stage_chain_follows_stage_names() {
        let text = "FROM golang AS build\nRUN make\n\
                    FROM debian AS base\nRUN apt-get update\n\
                    FROM base AS final\nUSER app\n";
        let dockerfile = Dockerfile::parse(text);
        let chain = dockerfile.final_stage_chain();
        let bases: Vec<&str> = chain.iter().map(|s| s.base.as_str()).collect();
        assert_eq!(bases, ["debian", "base"]);
        assert_eq!(chain[0].name.as_deref(), Some("base"));
        assert_eq!(dockerfile.instructions[chain[0].from].start_line, 3);
    }

    #[test]
    fn from_with_platform_flag() {
        assert_eq!(
            from_arguments("--platform=$BUILDPLATFORM golang:1.22 AS Build"),
            ("golang:1.22".to_string(), Some("build".to_string()))
        );
        assert_eq!(from_arguments("scratch"), ("scratch".to_string(), None));
    }
}
