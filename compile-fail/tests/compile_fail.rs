//! Each boundary rule and each attribute mistake fails to compile with a message naming the fix.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
