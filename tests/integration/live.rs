//! `assent collect --preview --json` on this machine's `/`, cross-checked against tools
//! we did not write: uname, /proc/meminfo, `ip -j addr`, dpkg-query.

use assent_testkit::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn live_preview() -> Value {
    let out = run_ok(assent().args(["collect", "--preview", "--json"]));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn present(field: &Value) -> &Value {
    field
        .get("present")
        .unwrap_or_else(|| panic!("field not present: {field}"))
}

fn tool(program: &str, args: &[&str]) -> String {
    let out = run_ok(Command::new(program).args(args));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn live_values_match_independent_tools() {
    let preview = live_preview();

    // Kernel release.
    assert_eq!(
        present(&preview["os"]["kernel_release"]).as_str().unwrap(),
        tool("uname", &["-r"]).trim()
    );
    assert_eq!(
        present(&preview["os"]["architecture"]).as_str().unwrap(),
        tool("uname", &["-m"]).trim()
    );

    // Memory: MemTotal as the kernel reports it, read here independently.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        present(&preview["hardware"]["memory_total_bytes"])
            .as_u64()
            .unwrap(),
        kib * 1024
    );

    // IPv4 addresses per interface, as iproute2 sees them.
    let ip: Value = serde_json::from_str(&tool("ip", &["-j", "addr"])).unwrap();
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // The daemon tests running alongside add veth pairs (`ah<n><tag>`) at any moment;
    // they are not this machine's configuration.
    let ours = |name: &str| {
        !(name.starts_with("ah") && name[2..].starts_with(|c: char| c.is_ascii_digit()))
    };
    for link in ip.as_array().unwrap() {
        let name = link["ifname"].as_str().unwrap().to_string();
        if !ours(&name) {
            continue;
        }
        let addrs = expected.entry(name).or_default();
        for a in link["addr_info"].as_array().unwrap() {
            if a["family"] == "inet" {
                addrs.insert(format!(
                    "{}/{}",
                    a["local"].as_str().unwrap(),
                    a["prefixlen"]
                ));
            }
        }
    }
    let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for iface in present(&preview["network"]["interfaces"])
        .as_array()
        .unwrap()
    {
        let name = iface["name"].as_str().unwrap().to_string();
        if !ours(&name) {
            continue;
        }
        let addrs = actual.entry(name).or_default();
        for a in present(&iface["ipv4_addresses"]).as_array().unwrap() {
            addrs.insert(format!(
                "{}/{}",
                a["address"].as_str().unwrap(),
                a["prefix_length"]
            ));
        }
    }
    assert_eq!(actual, expected);
    assert!(actual.contains_key("lo"), "{actual:?}");

    // Installed packages, as dpkg itself lists them.
    let listed = tool("dpkg-query", &["-W", "-f", "${Status}\t${Package}\n"]);
    let installed: BTreeSet<String> = listed
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(status, _)| status.ends_with(" installed"))
        .map(|(_, name)| name.to_string())
        .collect();
    let packages: BTreeSet<String> = present(&preview["software"]["packages"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!installed.is_empty());
    assert_eq!(packages, installed);
}
