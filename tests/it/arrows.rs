//! The arrows between the library's rooms point down, never up (../shared/ARCHITECTURE.md):
//! each room may use only rooms below it. Read from the sources, so a new `use` that points
//! up fails here, naming the file and line.

use std::path::Path;

/// The rooms from the bottom up. A room may use rooms of a lower rank only; `metrics` and
/// `vocab` use nothing of ours at all.
const RANKS: [(&str, u8); 15] = [
    ("vocab", 0),
    ("metrics", 1),
    ("fsutil", 1),
    ("allocator", 1),
    ("config", 2),
    ("data", 3),
    ("models", 4),
    ("report", 5),
    ("telemetry", 5),
    ("jobs", 6),
    ("engine", 7),
    ("alerts", 8),
    ("server", 9),
    ("daemon", 10),
    // Not a room: the crate root only declares the rooms.
    ("lib", 11),
];

fn rank(room: &str) -> Option<u8> {
    RANKS.iter().find(|(r, _)| *r == room).map(|(_, rank)| *rank)
}

/// Every `crate::<room>` a source file names (outside comments), with its line.
fn uses(source: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            out.push((number + 1, tail[..end].to_string()));
            rest = &tail[end..];
        }
    }
    out
}

/// The arrows from `room` (in `file`) that point up or sideways.
fn violations(room: &str, file: &str, source: &str) -> Vec<String> {
    let Some(own) = rank(room) else {
        return vec![format!("{file}: room {room} is not in the ranks of tests/it/arrows.rs")];
    };
    uses(source)
        .into_iter()
        .filter(|(_, used)| used != room)
        .filter_map(|(line, used)| {
            let bottom = matches!(room, "vocab" | "metrics");
            let allowed = !bottom && rank(&used).is_some_and(|r| r < own);
            (!allowed).then(|| format!("{file}:{line}: {room} uses crate::{used}, a room it must not reach"))
        })
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_room_uses_only_the_rooms_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in files {
        let relative = path.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let room = first.trim_end_matches(".rs");
        // The command line (src/cli, src/main.rs) is the binary, above every room.
        if room == "cli" || room == "main" {
            continue;
        }
        checked += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        problems.extend(violations(room, &relative.display().to_string(), &source));
    }
    assert!(checked > 50, "only {checked} files read");
    assert!(problems.is_empty(), "arrows pointing up:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_an_arrow_pointing_up() {
    let source =
        "use crate::vocab::ModelKind;\nuse crate::engine::history::RunHistory; // up\n// crate::server in a comment\n";
    assert_eq!(
        violations("config", "config/x.rs", source),
        ["config/x.rs:2: config uses crate::engine, a room it must not reach"]
    );
    assert_eq!(
        violations("metrics", "metrics/x.rs", "use crate::vocab::text;").len(),
        1
    );
    assert!(violations("server", "server/x.rs", source).is_empty());
}
