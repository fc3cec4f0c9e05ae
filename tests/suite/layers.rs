//! protean-core's layers import one way (docs/architecture.md): each file may name
//! `crate::<layer>` only for the layers its own layer sits on; and no files of
//! protean-core import each other in a loop, inside a layer either.

use std::path::Path;

/// Each layer and the layers it may import from (besides itself and `json`, a helper).
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("registry", &["model"]),
    ("export", &["registry", "model"]),
    ("contract", &["registry", "model"]),
    ("store", &["model"]),
    ("runtime", &["store", "registry", "export", "contract", "model"]),
    ("testing", &["runtime", "store", "registry", "export", "contract", "model"]),
    ("cli", &["runtime", "store", "registry", "export", "contract", "model"]),
    ("http", &["runtime", "store", "registry", "export", "contract", "model"]),
];

const LAYERS: &[&str] = &["model", "registry", "export", "contract", "store", "runtime", "testing", "cli", "http"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn protean_core_imports_only_from_the_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("protean-core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let Some((layer, allowed)) = ALLOWED.iter().find(|(layer, _)| *layer == first) else { continue };
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for target in LAYERS.iter().filter(|t| *t != layer && !allowed.contains(t)) {
                if code.contains(&format!("crate::{target}::")) || code.contains(&format!("crate::{target}}}")) {
                    wrong.push(format!("{}:{}: `{layer}` uses `{target}`: {}", relative.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} files found under {}", src.display());
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}

/// Imports that close a loop between files and are not removed yet, as `(from, to)` files
/// under protean-core/src: each goes against the order its layer's files are meant to
/// have. The list may only shrink: an entry whose import is gone fails the test, so
/// removing an import removes its entry, and an import not listed here may not close a loop.
const KNOWN_LOOP_EDGES: &[(&str, &str)] = &[];

/// One file of protean-core/src: its module path (`["runtime", "context"]`) and code.
struct Module {
    file: String,
    path: Vec<String>,
    code: String,
}

/// A module's path from its file: `runtime/context.rs` and `runtime/context/mod.rs` are
/// `runtime::context`, `lib.rs` the crate root.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> =
        relative.components().map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    if parts.last().is_some_and(|last| last == "mod" || (parts.len() == 1 && last == "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments, string literals and its trailing `#[cfg(test)]`
/// module (tests may import what they test from anywhere).
fn code_of(text: &str) -> String {
    let mut lines = Vec::new();
    let mut all = text.lines().peekable();
    while let Some(line) = all.next() {
        if line.starts_with("#[cfg(test)]") && all.peek().is_some_and(|next| next.starts_with("mod ")) {
            break;
        }
        lines.push(line);
    }
    let mut code = String::new();
    for line in lines {
        let mut in_string = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if in_string => {
                    chars.next();
                }
                '"' => in_string = !in_string,
                '/' if !in_string && chars.peek() == Some(&'/') => break,
                _ if in_string => {}
                _ => code.push(c),
            }
        }
        code.push('\n');
    }
    code
}

/// Every path in `code` that starts at `crate::`, `super::`, `self::` or a child module
/// of `module`, with `use` groups (`a::{b, c::d}`) expanded, as absolute module paths.
fn paths_in(module: &Module, children: &[String]) -> Vec<Vec<String>> {
    let tokens = tokenize(&module.code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let preceded_by_path = i > 0 && tokens[i - 1] == "::";
        let start: Option<Vec<String>> = match tokens[i].as_str() {
            _ if preceded_by_path => None,
            "crate" => Some(Vec::new()),
            "self" => Some(module.path.clone()),
            "super" => Some(module.path[..module.path.len().saturating_sub(1)].to_vec()),
            name if children.iter().any(|child| child == name) => Some(module.path.clone()),
            _ => None,
        };
        let Some(mut prefix) = start else {
            i += 1;
            continue;
        };
        if matches!(tokens[i].as_str(), "crate" | "self" | "super") {
            i += 1;
        }
        let relative_child = i < tokens.len() && children.iter().any(|child| *child == tokens[i]);
        if !relative_child && tokens.get(i).map(String::as_str) != Some("::") {
            continue;
        }
        if relative_child {
            prefix.push(tokens[i].clone());
            i += 1;
        }
        i = parse_tree(&tokens, i, prefix, &mut found);
    }
    found
}

/// Parses `(:: segment)* (:: { tree, ... })?` after `prefix`, pushing each full path.
fn parse_tree(tokens: &[String], mut i: usize, mut prefix: Vec<String>, found: &mut Vec<Vec<String>>) -> usize {
    while tokens.get(i).map(String::as_str) == Some("::") {
        match tokens.get(i + 1).map(String::as_str) {
            Some("{") => {
                i += 2;
                while i < tokens.len() && tokens[i] != "}" {
                    if tokens[i] == "," {
                        i += 1;
                        continue;
                    }
                    let mut inner = prefix.clone();
                    if tokens[i] != "self" && tokens[i] != "*" {
                        inner.push(tokens[i].clone());
                    }
                    i = parse_tree(tokens, i + 1, inner, found);
                    while i < tokens.len() && tokens[i] != "," && tokens[i] != "}" {
                        i += 1;
                    }
                }
                return i + 1;
            }
            Some(segment) if segment.chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_') => {
                prefix.push(segment.to_string());
                i += 2;
            }
            _ => break,
        }
    }
    found.push(prefix);
    i
}

/// Identifiers, `::` and single punctuation characters of `code`.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_string();
            while let Some(&next) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                word.push(next);
                chars.next();
            }
            tokens.push(word);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            tokens.push("::".to_string());
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// The file defining what `path` names: the deepest module on the path, followed through
/// the `pub use` re-exports of that module (a layer's `mod.rs` re-exports its files' items).
fn resolve(path: &[String], modules: &[Module], depth: usize) -> Option<usize> {
    let mut owner = modules.iter().position(|m| m.path.is_empty())?;
    let mut rest = path;
    while let Some(next) = rest.first() {
        let mut child = modules[owner].path.clone();
        child.push(next.clone());
        match modules.iter().position(|m| m.path == child) {
            Some(found) => {
                owner = found;
                rest = &rest[1..];
            }
            None => break,
        }
    }
    let (Some(item), true) = (rest.first(), depth < 8) else { return Some(owner) };
    let children = child_modules(&modules[owner], modules);
    for exported in paths_in(&modules[owner], &children) {
        if exported.last() == Some(item) && exported.len() > 1 && reexports(&modules[owner].code, item) {
            if let Some(target) = resolve(&exported, modules, depth + 1) {
                return Some(target);
            }
        }
    }
    Some(owner)
}

/// Whether `code` has a `pub use` or `pub(crate) use` naming `item`.
fn reexports(code: &str, item: &str) -> bool {
    code.split(';').any(|statement| {
        let statement = statement.trim_start();
        (statement.starts_with("pub use") || statement.starts_with("pub(crate) use"))
            && tokenize(statement).iter().any(|token| token == item)
    })
}

/// The names of `module`'s child modules.
fn child_modules(module: &Module, modules: &[Module]) -> Vec<String> {
    modules
        .iter()
        .filter(|m| m.path.len() == module.path.len() + 1 && m.path.starts_with(&module.path))
        .map(|m| m.path.last().unwrap().clone())
        .collect()
}

/// Every file of protean-core/src with the edges `(from, to)` between files that its paths
/// make. A file's uses of its own submodules (`store/sqlite/mod.rs` of `store/sqlite/*.rs`) are
/// not edges: they are parts of it; their uses of it are.
fn import_graph() -> (Vec<Module>, Vec<(usize, usize)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("protean-core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: Vec<Module> = files
        .iter()
        .map(|file| {
            let relative = file.strip_prefix(&src).unwrap();
            Module {
                file: relative.display().to_string(),
                path: module_path(relative),
                code: code_of(&std::fs::read_to_string(file).unwrap()),
            }
        })
        .collect();
    let mut edges = Vec::new();
    for (from, module) in modules.iter().enumerate() {
        let children = child_modules(module, &modules);
        for path in paths_in(module, &children) {
            if let Some(to) = resolve(&path, &modules, 0) {
                if to != from && !modules[to].path.starts_with(&module.path) && !edges.contains(&(from, to)) {
                    edges.push((from, to));
                }
            }
        }
    }
    (modules, edges)
}

/// The groups of files that reach each other through `edges` (strongly connected
/// components of more than one file), each sorted.
fn loops(count: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let reach = |from: usize| {
        let mut seen = vec![false; count];
        let mut stack = vec![from];
        while let Some(at) = stack.pop() {
            for &(_, to) in edges.iter().filter(|(f, _)| *f == at) {
                if !seen[to] {
                    seen[to] = true;
                    stack.push(to);
                }
            }
        }
        seen
    };
    let reaches: Vec<Vec<bool>> = (0..count).map(reach).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (a, from_a) in reaches.iter().enumerate() {
        if groups.iter().any(|g| g.contains(&a)) {
            continue;
        }
        let group: Vec<usize> = (0..count).filter(|&b| b == a || (from_a[b] && reaches[b][a])).collect();
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
}

#[test]
fn protean_core_files_import_each_other_without_loops() {
    let (modules, edges) = import_graph();
    let runtime_edges = edges.iter().filter(|(from, _)| modules[*from].file.starts_with("runtime/")).count();
    assert!(runtime_edges > 20, "only {runtime_edges} imports found between runtime files");
    let name = |file: &str| modules.iter().position(|m| m.file == file);
    let mut stale = Vec::new();
    let mut known = Vec::new();
    for (from, to) in KNOWN_LOOP_EDGES {
        match (name(from), name(to)) {
            (Some(f), Some(t)) if edges.contains(&(f, t)) => known.push((f, t)),
            _ => stale.push(format!("{from} -> {to}")),
        }
    }
    assert!(stale.is_empty(), "KNOWN_LOOP_EDGES lists imports that are gone; remove them:\n{}", stale.join("\n"));
    let remaining: Vec<(usize, usize)> = edges.iter().copied().filter(|edge| !known.contains(edge)).collect();
    let found = loops(modules.len(), &remaining);
    let report: Vec<String> = found
        .iter()
        .map(|group| {
            let inside: Vec<String> = remaining
                .iter()
                .filter(|(f, t)| group.contains(f) && group.contains(t))
                .map(|(f, t)| format!("  {} -> {}", modules[*f].file, modules[*t].file))
                .collect();
            format!("loop through {} files:\n{}", group.len(), inside.join("\n"))
        })
        .collect();
    assert!(found.is_empty(), "import loops between files of protean-core/src:\n{}", report.join("\n"));
}

/// The longest a file of protean-core may be: past it, a file holds more than one thing.
const MAX_LINES: usize = 600;

#[test]
fn no_file_of_protean_core_is_longer_than_600_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("protean-core/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            let name = file.strip_prefix(&src).unwrap().display().to_string();
            (lines > MAX_LINES).then(|| format!("{name}: {lines} lines"))
        })
        .collect();
    long.sort();
    assert!(long.is_empty(), "files longer than {MAX_LINES} lines:\n{}", long.join("\n"));
}

/// The store's ports, each with the file every backend implements it in.
const PORTS: &[(&str, &str)] = &[
    ("Records", "records.rs"),
    ("Outbox", "outbox.rs"),
    ("Deliveries", "deliveries.rs"),
    ("Projections", "projections.rs"),
    ("Schedule", "schedule.rs"),
];

/// The backends' folders under `protean-core/src/store`, and the type each implements.
const BACKENDS: &[(&str, &str)] =
    &[("memory", "MemoryStore"), ("sqlite", "SqliteStore"), ("postgres", "PostgresStore")];

#[test]
fn every_backend_implements_each_port_in_the_file_of_its_name() {
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("protean-core/src/store");
    for (port, file) in PORTS {
        let definition = std::fs::read_to_string(store.join("ports").join(file))
            .unwrap_or_else(|e| panic!("store/ports/{file}: {e}"));
        assert!(definition.contains(&format!("pub trait {port}:")), "store/ports/{file} defines `{port}`");
    }
    for (backend, ty) in BACKENDS {
        let folder = store.join(backend);
        let mut files = Vec::new();
        rust_files(&folder, &mut files);
        for (port, file) in PORTS {
            let implementation = format!("impl {port} for {ty}");
            let holders: Vec<String> = files
                .iter()
                .filter(|f| std::fs::read_to_string(f).unwrap().contains(&implementation))
                .map(|f| f.strip_prefix(&store).unwrap().display().to_string())
                .collect();
            assert_eq!(
                holders,
                [format!("{backend}/{file}")],
                "`{implementation}` is in store/{backend}/{file}, alone"
            );
        }
    }
}
