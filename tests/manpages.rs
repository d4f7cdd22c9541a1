//! The manual pages in `man/`: each lints clean, each binary has one, and the pages that
//! document a grammar or a command line name all of it, taken from the source (the config
//! parser's key lists, the CLI's `--help`) so that they cannot fall behind unnoticed.
//! Pure: no root, no network. mandoc and groff must be installed (`scripts/test` installs
//! them); a missing one fails the test with a sentence saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vifkit::input::config::{HOST_KEYS, PORT_KEYS, SECTIONS};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every page in `man/`: files named `<name>.<section digit>`.
fn pages() -> Vec<PathBuf> {
    let dir = root().join("man");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.len() == 1 && e.as_bytes()[0].is_ascii_digit())
        })
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "no pages in {}", dir.display());
    pages
}

fn page(name: &str) -> String {
    let path = root().join("man").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// Runs a tool the test cannot do without; its absence is a failure that says what to install.
fn run(program: &str, package: &str, args: &[&str], file: &Path) -> Output {
    match Command::new(program).args(args).arg(file).output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "{program} is not installed, so the manual pages cannot be checked: apt-get install {package} (scripts/test installs it)"
        ),
        Err(err) => panic!("run {program}: {err}"),
    }
}

fn complaints(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_page_lints_clean_with_mandoc() {
    let mut dirty = vec![];
    for path in pages() {
        let output = run("mandoc", "mandoc", &["-T", "lint", "-W", "warning"], &path);
        let said = complaints(&output);
        if !output.status.success() || !said.is_empty() {
            dirty.push(format!("{} ({}):\n{said}", path.display(), output.status));
        }
    }
    assert!(
        dirty.is_empty(),
        "mandoc -T lint -W warning:\n{}",
        dirty.join("\n")
    );
}

#[test]
fn every_page_formats_without_groff_warnings() {
    let mut dirty = vec![];
    for path in pages() {
        let output = run("groff", "groff-base", &["-ww", "-man", "-z"], &path);
        let said = complaints(&output);
        if !output.status.success() || !said.is_empty() {
            dirty.push(format!("{} ({}):\n{said}", path.display(), output.status));
        }
    }
    assert!(dirty.is_empty(), "groff -ww -man -z:\n{}", dirty.join("\n"));
}

#[test]
fn every_binary_has_a_page_in_section_8() {
    let bin = root().join("src/bin");
    let mut missing = vec![];
    let mut binaries = 0;
    for entry in std::fs::read_dir(&bin).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        binaries += 1;
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let page = root().join("man").join(format!("{name}.8"));
        if !page.is_file() {
            missing.push(page.display().to_string());
        }
    }
    assert!(
        binaries >= 8,
        "only {binaries} binaries in {}",
        bin.display()
    );
    assert!(missing.is_empty(), "binaries without a page: {missing:?}");
}

/// Every page names itself in its `.TH` line and its NAME section, and has the sections
/// every page here has.
#[test]
fn every_page_has_its_title_and_the_common_sections() {
    for path in pages() {
        let file = path.file_name().unwrap().to_str().unwrap();
        let (name, section) = file.rsplit_once('.').unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let th = text.lines().find(|l| l.starts_with(".TH ")).unwrap_or("");
        let want = format!(".TH {} {section} ", name.to_uppercase());
        assert!(
            th.starts_with(&want),
            "{file}: {th:?} should start with {want:?}"
        );
        let headings: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(".SH "))
            .map(|h| h.trim_matches('"'))
            .collect();
        for wanted in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "SEE ALSO",
        ] {
            assert!(headings.contains(&wanted), "{file} has no {wanted} section");
        }
        let name_line = text
            .split(".SH NAME\n")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or("");
        assert!(
            name_line
                .replace("\\-", "-")
                .starts_with(&format!("{name} ")),
            "{file}: the NAME line {name_line:?} should start with {name}"
        );
    }
}

/// The text of a `.TP` head or `.SS` title with its macro, quotes and font escapes gone:
/// `.BI "allow = " WORD " ..."` is `allow = WORD ...`.
fn plain(line: &str) -> String {
    let words = line.split_once(' ').map_or("", |(_, rest)| rest);
    let mut text = words.replace('"', "").replace("\\-", "-");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP", "\\c"] {
        text = text.replace(font, "");
    }
    text
}

/// Each `.SS` subsection of `section` (the section's own text first, titled "") with the
/// first word of each of its `.TP` heads.
fn heads_by_subsection(text: &str, section: &str) -> Vec<(String, Vec<String>)> {
    let mut subsections: Vec<(String, Vec<String>)> = vec![];
    let mut in_section = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix(".SH ") {
            in_section = title.trim_matches('"') == section;
            if in_section {
                // Tagged paragraphs before the first `.SS` belong to the section itself.
                subsections.push((String::new(), vec![]));
            }
            continue;
        }
        if !in_section {
            continue;
        }
        if line.starts_with(".SS ") {
            subsections.push((plain(line), vec![]));
        } else if line == ".TP"
            && let Some(head) = lines.next()
            && let Some((_, heads)) = subsections.last_mut()
        {
            let head = plain(head);
            heads.push(head.split_whitespace().next().unwrap_or("").to_owned());
        }
    }
    subsections
}

/// vifkit.conf.5 documents exactly the sections and keys the parser takes: its FORMAT
/// section has a subsection per section of the file, whose tagged paragraphs are the keys.
#[test]
fn vifkit_conf_5_documents_every_section_and_key_the_parser_takes() {
    let text = page("vifkit.conf.5");
    let subsections = heads_by_subsection(&text, "FORMAT");
    let keys_of = |section: &str| -> Vec<String> {
        let title = match section {
            "host" => "[host]".to_owned(),
            other => format!("[{other} PATTERN ...]"),
        };
        match subsections.iter().find(|(t, _)| *t == title) {
            Some((_, heads)) => heads.clone(),
            None => panic!("vifkit.conf.5 has no subsection {title:?} in FORMAT"),
        }
    };
    for section in SECTIONS {
        let documented = keys_of(section);
        let accepted: &[&str] = match section {
            "port" => &PORT_KEYS,
            "host" => &HOST_KEYS,
            other => panic!("[{other}] is a section of vifkit.conf this test does not know"),
        };
        for key in accepted {
            assert!(
                documented.iter().any(|d| d == key),
                "vifkit.conf.5 does not document {key} = in [{section}] (it documents {documented:?})"
            );
        }
        for key in &documented {
            assert!(
                accepted.contains(&key.as_str()),
                "vifkit.conf.5 documents {key} = in [{section}], which the parser refuses"
            );
        }
    }
}

/// The verbs `vifkit --help` lists, clap's own `help` aside.
fn verbs() -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_vifkit"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "vifkit --help: {}", output.status);
    let help = String::from_utf8(output.stdout).unwrap();
    let commands = help
        .split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: in vifkit --help:\n{help}"));
    let verbs: Vec<String> = commands
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|verb| *verb != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        verbs.len() >= 5,
        "too few verbs in vifkit --help: {verbs:?}"
    );
    verbs
}

#[test]
fn vifkit_8_documents_every_verb_of_the_cli() {
    let text = page("vifkit.8");
    let documented: Vec<String> = heads_by_subsection(&text, "COMMANDS")
        .into_iter()
        .flat_map(|(_, heads)| heads)
        .collect();
    let missing: Vec<String> = verbs()
        .into_iter()
        .filter(|verb| !documented.contains(verb))
        .collect();
    assert!(
        missing.is_empty(),
        "vifkit.8 has no entry in COMMANDS for {missing:?} (it has {documented:?})"
    );
}

/// The text of each `.EX` ... `.EE` block of a page, with the escapes the pages use undone.
fn examples(text: &str) -> Vec<String> {
    let mut blocks = vec![];
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (line, current.as_mut()) {
            (".EX", None) => current = Some(String::new()),
            (".EE", Some(_)) => blocks.extend(current.take()),
            (line, Some(block)) => {
                let line = line
                    .replace("\\-", "-")
                    .replace("\\(aq", "'")
                    .replace("\\(dq", "\"")
                    .replace("\\e", "\\");
                block.push_str(&line);
                block.push('\n');
            }
            (_, None) => {}
        }
    }
    blocks
}

/// Every vifkit.conf example in the pages (a block whose first line that is not a comment
/// opens a section) is a file the parser takes.
#[test]
fn every_vifkit_conf_example_in_the_pages_parses() {
    let mut seen = 0;
    for path in pages() {
        let text = std::fs::read_to_string(&path).unwrap();
        for block in examples(&text) {
            let first = block
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'));
            if !first.is_some_and(|l| l.starts_with("[port ") || l == "[host]") {
                continue;
            }
            seen += 1;
            if let Err(err) = vifkit::input::config::Config::parse(&path, &block) {
                panic!(
                    "an example of {} does not parse: {err:#}\n{block}",
                    path.display()
                );
            }
        }
    }
    assert!(
        seen >= 5,
        "only {seen} vifkit.conf examples found in the pages"
    );
}
