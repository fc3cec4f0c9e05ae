//! protean-core's layers import one way (docs/architecture.md): each file may name
//! `crate::<layer>` only for the layers its own layer sits on.

use std::path::Path;

/// Each layer and the layers it may import from (besides itself and `json`, a helper).
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("registry", &["model"]),
    ("export", &["registry", "model"]),
    ("store", &["model"]),
    ("runtime", &["store", "registry", "export", "model"]),
    ("testing", &["runtime", "store", "registry", "export", "model"]),
];

const LAYERS: &[&str] = &["model", "registry", "export", "store", "runtime", "testing"];

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
