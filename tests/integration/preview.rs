//! `assent collect --preview` on fixtures and on this machine.

use crate::util::*;

#[test]
fn version_and_help_list_every_subcommand() {
    let out = run_ok(assent().arg("--version"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("assent "), "{text}");
    let out = assent().arg("--help").output().unwrap();
    let help =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(help.contains("collect"), "--help lacks collect: {help}");
}
