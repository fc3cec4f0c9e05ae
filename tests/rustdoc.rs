//! What a user's `cargo doc` shows of a domain model: the documentation of
//! a small user crate, `tests/rustdoc_fixture` (elements of every kind, an entity named
//! `Copy`, an event named `Result`, a private handler), built with
//! `RUSTDOCFLAGS="-D warnings"` together with protean's own, then read as HTML.
//!
//! The build runs once per test binary, in its own target directory under
//! `target/tmp/rustdoc` that later runs reuse: protean's dependencies are only checked
//! there, and the fixture depends on protean without default features, so no store is
//! compiled.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The root of this workspace.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The documentation directory, once built; the build's error output otherwise.
fn docs() -> &'static Path {
    static DOCS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DOCS.get_or_init(build_docs) {
        Ok(dir) => dir,
        Err(failure) => panic!("{failure}"),
    }
}

/// Copies the fixture where it builds (its path to protean made absolute, and the
/// workspace's lock file beside it, so it resolves to the same versions, offline), then
/// documents it and protean with warnings denied.
fn build_docs() -> Result<PathBuf, String> {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rustdoc");
    let crate_dir = work.join("fixture");
    let source = Path::new(ROOT).join("tests/rustdoc_fixture");
    let manifest = read(&source.join("Cargo.toml")).replace("path = \"../..\"", &format!("path = {ROOT:?}"));
    write_if_changed(&crate_dir.join("Cargo.toml"), &manifest);
    for entry in fs::read_dir(source.join("src")).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().expect("a file name");
        write_if_changed(&crate_dir.join("src").join(name), &read(&path));
    }
    let lock = Path::new(ROOT).ancestors().map(|dir| dir.join("Cargo.lock")).find(|lock| lock.is_file());
    let lock = lock.ok_or("no Cargo.lock above protean's manifest: build the workspace first")?;
    write_if_changed(&crate_dir.join("Cargo.lock"), &read(&lock));

    let target = work.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["doc", "--no-deps", "-p", "protean", "-p", "lending", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTDOCFLAGS", "-D warnings")
        .env_remove("CARGO_ENCODED_RUSTDOCFLAGS")
        .env_remove("CARGO_BUILD_RUSTDOCFLAGS")
        .output()
        .map_err(|e| format!("cargo doc did not start: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`RUSTDOCFLAGS=\"-D warnings\" cargo doc` of the fixture failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target.join("doc"))
}

/// The file's text (panics: the fixture is part of this repository).
fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `text` unless the file holds it already, so that cargo sees nothing changed.
fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    fs::create_dir_all(path.parent().expect("a parent directory")).expect("the fixture's directory");
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The page of `item` (`loans/struct.Loan.html`) in the fixture's documentation.
fn page(item: &str) -> String {
    read(&docs().join("lending").join(item))
}

/// The text a reader sees: no scripts, styles, tags or attributes, entities decoded.
fn visible_text(html: &str) -> String {
    let mut html = html.to_string();
    for element in ["script", "style"] {
        while let Some(start) = html.find(&format!("<{element}")) {
            let end =
                html[start..].find(&format!("</{element}>")).map_or(html.len(), |e| start + e + element.len() + 3);
            html.replace_range(start..end, "");
        }
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    for (entity, c) in [("&lt;", "<"), ("&gt;", ">"), ("&#60;", "<"), ("&#62;", ">"), ("&#39;", "'"), ("&quot;", "\"")]
    {
        text = text.replace(entity, c);
    }
    text.replace("&amp;", "&")
}

/// The trait impls listed on a page: each one's header (as HTML, with its links) and
/// the visible text of its documentation.
fn impls(html: &str) -> Vec<(String, String)> {
    let sections: Vec<&str> = html.split("<section id=\"impl-").skip(1).collect();
    sections
        .iter()
        .filter_map(|section| {
            let start = section.find("<h3 class=\"code-header\">")?;
            let end = start + section[start..].find("</h3>")?;
            let doc = section[end..].split("<div class=\"impl-items\">").next().unwrap_or_default();
            Some((section[start..end].to_string(), visible_text(doc)))
        })
        .collect()
}

/// The impl on the page whose header reads `header` (visible text, such as
/// `impl Handles<BorrowBook, LoanCommands> for Loan`), with its header's HTML.
fn find_impl(html: &str, header: &str) -> Option<(String, String)> {
    impls(html).into_iter().find(|(h, _)| visible_text(h) == header)
}

/// Whether the impl header links to the fixture's struct `name`.
fn links_to(header: &str, name: &str) -> bool {
    header.contains(&format!("/struct.{name}.html\"")) || header.contains(&format!("\"struct.{name}.html\""))
}

/// Asserts that the page lists the impl `header`, linking each of `names`, documented
/// with a text containing `doc`.
fn assert_impl(item: &str, header: &str, names: &[&str], doc: &str) {
    let html = page(item);
    let Some((html_header, text)) = find_impl(&html, header) else {
        let listed: Vec<String> = impls(&html).iter().map(|(h, _)| visible_text(h)).collect();
        panic!("{item} does not list `{header}`; it lists {listed:#?}");
    };
    for name in names {
        assert!(links_to(&html_header, name), "`{header}` on {item} does not link to {name}: {html_header}");
    }
    assert!(text.contains(doc), "`{header}` on {item} is documented as {text:?}, not with {doc:?}");
}

/// Every file under `dir` whose name ends with `.{extension}`.
fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(path);
            }
        }
    }
    found
}

/// The entries of each list in the page's sidebar, by the list's class
/// (`trait-implementation`, `blanket-implementation`, ...).
fn sidebar_lists(html: &str) -> Vec<(String, Vec<String>)> {
    let Some(start) = html.find("<nav class=\"sidebar\">") else { return Vec::new() };
    let nav = &html[start..start + html[start..].find("</nav>").unwrap_or(html.len() - start)];
    nav.split("<ul class=\"block ")
        .skip(1)
        .map(|list| {
            let list = &list[..list.find("</ul>").unwrap_or(list.len())];
            let class = list[..list.find('"').unwrap_or(0)].to_string();
            let entries = list.split("<li>").skip(1).map(visible_text).collect();
            (class, entries)
        })
        .collect()
}

#[test]
fn a_user_crate_with_awkward_names_documents_without_warnings() {
    // `docs()` panics with rustdoc's output when `-D warnings` fails the build: an entity
    // named `Copy` made the generated intra-doc links ambiguous with the derive macro.
    assert!(docs().join("lending/loans/struct.Copy.html").is_file());
    assert!(docs().join("lending/loans/struct.Result.html").is_file());
}

#[test]
fn a_handler_page_names_the_aggregate_and_what_it_handles_with_links() {
    for (command, method) in [("BorrowBook", "borrow"), ("ReturnBook", "give_back"), ("RenewLoan", "renew")] {
        assert_impl(
            "loans/struct.LoanCommands.html",
            &format!("impl Handles<{command}, LoanCommands> for Loan"),
            &[command, "LoanCommands", "Loan"],
            &format!("handles the command {command} in LoanCommands::{method}, changing Loan."),
        );
    }
    assert_impl(
        "members/struct.MemberReactions.html",
        "impl Handles<Result, MemberReactions> for Member",
        &["Result", "MemberReactions", "Member"],
        "reacts to the event Result in MemberReactions::ended, changing Member",
    );
}

#[test]
fn each_event_page_lists_who_reacts_to_it() {
    let result = "loans/struct.Result.html";
    assert_impl(result, "impl Raises<Result> for Loan", &["Result", "Loan"], "Loan raises the event Result");
    assert_impl(
        result,
        "impl Handles<Result, MemberReactions> for Member",
        &["Result", "MemberReactions", "Member"],
        "Handler MemberReactions reacts",
    );
    assert_impl(
        result,
        "impl FedBy<Result, OpenLoansProjector> for OpenLoans",
        &["Result", "OpenLoansProjector", "OpenLoans"],
        "Projector OpenLoansProjector updates OpenLoans from the event Result, after it is committed",
    );
    assert_impl(
        result,
        "impl Handles<Result, Reminder> for Reminder",
        &["Result", "Reminder"],
        "Process manager Reminder takes the event Result in Reminder::ended (moves a flow on)",
    );

    let opened = "loans/struct.LoanOpened.html";
    assert_impl(opened, "impl FedBy<LoanOpened, OpenLoansProjector> for OpenLoans", &["OpenLoans"], "LoanOpened");
    assert_impl(opened, "impl Handles<LoanOpened, Reminder> for Reminder", &["Reminder"], "(starts a flow)");
    // `Counting` reacts too, but it is private: rustdoc leaves out impls naming it.
    assert!(!page(opened).contains("Counting"));

    // A command's page names its handler.
    assert_impl("loans/struct.BorrowBook.html", "impl Handles<BorrowBook, LoanCommands> for Loan", &["Loan"], "borrow");
    // The page's own paragraph says where to look, and what the names there mean.
    let text = visible_text(&page(opened));
    assert!(text.contains("Event of Loan, stored as Loan.LoanOpened (version 1)"), "{text}");
    assert!(text.contains("each projector as FedBy<LoanOpened, Projector>"), "{text}");
    // Nothing reacts to `LoanRenewed`, and its page lists no one.
    let renewed: Vec<String> =
        impls(&page("loans/struct.LoanRenewed.html")).iter().map(|(h, _)| visible_text(h)).collect();
    assert!(!renewed.iter().any(|h| h.starts_with("impl Handles") || h.starts_with("impl FedBy")), "{renewed:#?}");
}

#[test]
fn the_aggregate_page_lists_its_commands_events_entities_and_handlers() {
    let loan = "loans/struct.Loan.html";
    assert_impl(
        loan,
        "impl Accepts<BorrowBook> for Loan",
        &["BorrowBook"],
        "Loan is changed by the command BorrowBook",
    );
    assert_impl(loan, "impl Raises<LoanOpened> for Loan", &["LoanOpened"], "stored as Loan.LoanOpened, version 1");
    assert_impl(loan, "impl Contains<Copy> for Loan", &["Copy"], "Loan holds Copy entities");
    assert_impl(loan, "impl Handles<RenewLoan, LoanCommands> for Loan", &["LoanCommands"], "LoanCommands::renew");
    assert_impl("loans/struct.Copy.html", "impl Contains<Copy> for Loan", &["Loan"], "Loan holds Copy entities");
    let text = visible_text(&page("loans/struct.Copy.html"));
    assert!(text.contains("Entity held by Loan: it has an identity of its own"), "{text}");

    let shelf = "shelves/struct.Shelf.html";
    assert_impl(shelf, "impl Handles<Stock, Shelving> for Shelf", &["Stock", "Shelving"], "Shelving::stock");
    let text = visible_text(&page(shelf));
    assert!(text.contains("Aggregate Shelf, event-sourced (its state is replayed from its events)"), "{text}");
    let text = visible_text(&page("shelves/struct.Stock.html"));
    assert!(text.contains("Command of Shelf, stored as Shelf.Stock (version 1)"), "{text}");
    assert!(text.contains("Its handler replies with Identifier<Shelf>."), "{text}");
}

#[test]
fn no_sidebar_lists_one_entry_twice() {
    // `CommandOf<Loan>` was listed once per command on `Loan`'s page, each entry the same.
    let mut checked = 0;
    for path in files(&docs().join("lending"), "html") {
        for (class, entries) in sidebar_lists(&read(&path)) {
            let mut seen = BTreeSet::new();
            for entry in &entries {
                assert!(seen.insert(entry), "{} lists `{entry}` twice under {class}: {entries:?}", path.display());
            }
            checked += entries.len();
        }
    }
    assert!(checked > 100, "the sidebars were not found ({checked} entries)");
}

#[test]
fn protean_plumbing_stays_off_the_users_pages() {
    // `Member` is the fixture's aggregate, and was a protean trait listed among its
    // blanket impls; the others state facts `Accepts`/`Raises`/`Contains` list better.
    let hidden = ["Member", "CommandOf<Loan>", "EventOf<Loan>", "EntityOf<Loan>"];
    for item in
        ["members/struct.Member.html", "loans/struct.Loan.html", "loans/struct.Fee.html", "loans/enum.LoanStatus.html"]
    {
        let html = page(item);
        for (class, entries) in sidebar_lists(&html) {
            if class.contains("implementation") {
                for name in hidden {
                    assert!(!entries.iter().any(|e| e == name), "{item} lists `{name}` under {class}: {entries:?}");
                }
            }
        }
    }
}

#[test]
fn builders_are_documented_on_their_element_not_in_the_module_index() {
    let index = visible_text(&page("loans/index.html"));
    assert!(index.contains("BorrowBook") && index.contains("LoanCommands"), "{index}");
    assert!(!index.contains("Builder"), "the module's index lists builders: {index}");
    let loan = visible_text(&page("loans/struct.Loan.html"));
    for row in [
        ".id(..)impl Into<Identifier<Loan>>generated",
        ".member(..)impl Into<Identifier<crate::members::Member>>required",
        ".copies(..)impl Into<HasMany<Copy>>empty",
        ".status(..)impl Into<LoanStatus>required",
    ] {
        assert!(loan.contains(row), "`Loan::builder()` does not document {row:?}:\n{loan}");
    }
}

#[test]
fn no_page_shows_a_protean_core_path() {
    // The pages of protean's items, re-exported from protean-core, and the user's.
    for dir in ["protean", "lending"] {
        for path in files(&docs().join(dir), "html") {
            let text = visible_text(&read(&path));
            assert!(!text.contains("protean_core"), "{} shows `protean_core`", path.display());
        }
    }
    // Examples of the items behind a store feature, which the build above leaves out:
    // in protean-core's sources, `protean_core` is written only in the hidden line that
    // lets an example say `protean::`.
    for path in files(&Path::new(ROOT).join("protean-core/src"), "rs") {
        for (n, line) in read(&path).lines().enumerate() {
            let doc = line.trim_start();
            if (doc.starts_with("///") || doc.starts_with("//!")) && line.contains("protean_core") {
                let hidden_alias =
                    doc.trim_start_matches(['/', '!']).trim() == "# extern crate protean_core as protean;";
                assert!(hidden_alias, "{}:{}: a user cannot write {line:?}", path.display(), n + 1);
            }
        }
    }
}
