//! Preparing a Syncthing home before Syncthing's first start: keys and `config.xml` from
//! `syncthing generate` when there are none, then the options every ksync-run Syncthing has
//! ([`SAFE_OPTIONS`]), one listen address and the GUI address, written into `config.xml`.
//!
//! Doing this before the first start matters: Syncthing's defaults announce the device to
//! global discovery servers, broadcast on the LAN and try relays and NAT traversal from the
//! first second. Used by ksync for the local Syncthing and by radar (`radar syncthing-init`)
//! for each node's.

/// Options every Syncthing ksync runs has: it talks only to its ksync peers (through
/// port-forwards or loopback), never to the internet or the LAN, and does not slow itself down.
pub const SAFE_OPTIONS: &[(&str, &str)] = &[
    ("globalAnnounceEnabled", "false"),
    ("localAnnounceEnabled", "false"),
    ("relaysEnabled", "false"),
    ("natEnabled", "false"),
    ("urAccepted", "-1"),
    ("crashReportingEnabled", "false"),
    ("autoUpgradeIntervalH", "0"),
    ("startBrowser", "false"),
    ("announceLANAddresses", "false"),
    ("setLowPriority", "false"),
];

/// Prepares a Syncthing home before Syncthing starts: generates keys and config when there
/// are none (`syncthing generate`), then enforces [`SAFE_OPTIONS`], one listen address and the
/// GUI address in `config.xml`. Idempotent: the device identity is kept across runs.
pub fn init_home(
    syncthing: &std::path::Path,
    home: &std::path::Path,
    listen: &str,
    gui_address: &str,
) -> Result<(), String> {
    let config = home.join("config.xml");
    if !config.exists() {
        std::fs::create_dir_all(home)
            .map_err(|e| format!("cannot create {}: {e}", home.display()))?;
        let out = std::process::Command::new(syncthing)
            .arg("generate")
            .arg(format!("--home={}", home.display()))
            .args(["--no-default-folder", "--skip-port-probing"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", syncthing.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`syncthing generate` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let xml = std::fs::read_to_string(&config)
        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let mut options: Vec<(&str, &str)> = SAFE_OPTIONS.to_vec();
    options.push(("listenAddress", listen));
    let xml = set_options(&xml, &options)?;
    let xml = set_gui_address(&xml, gui_address)?;
    let tmp = home.join("config.xml.ksync-tmp");
    std::fs::write(&tmp, xml).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &config).map_err(|e| format!("cannot replace {}: {e}", config.display()))
}

/// Sets each `<name>value</name>` inside `<options>` of a Syncthing `config.xml`, replacing
/// every existing element of that name (there may be several `listenAddress`).
pub fn set_options(xml: &str, options: &[(&str, &str)]) -> Result<String, String> {
    let start = xml
        .find("<options>")
        .ok_or("config.xml has no <options> element")?
        + "<options>".len();
    let end = xml[start..]
        .find("</options>")
        .map(|i| start + i)
        .ok_or("config.xml has no </options>")?;
    let mut body = xml[start..end].to_string();
    let indent = body
        .lines()
        .find(|l| l.trim_start().starts_with('<'))
        .map(|l| l.len() - l.trim_start().len())
        .unwrap_or(8);
    for (name, value) in options {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        while let Some(at) = body.find(&open) {
            let Some(len) = body[at..].find(&close).map(|i| i + close.len()) else {
                return Err(format!("config.xml has <{name}> without </{name}>"));
            };
            let line_start = body[..at].rfind('\n').map_or(at, |i| i + 1);
            let line_end = body[at + len..]
                .find('\n')
                .map_or(at + len, |i| at + len + i + 1);
            body.replace_range(line_start..line_end, "");
        }
        let trimmed = body.trim_end_matches([' ', '\t']).len();
        body.truncate(trimmed);
        if !body.ends_with('\n') {
            body.push('\n');
        }
        body.push_str(&format!(
            "{}{open}{}{close}\n",
            " ".repeat(indent),
            xml_escape(value)
        ));
    }
    body.push_str(&" ".repeat(indent.saturating_sub(4)));
    Ok(format!("{}{body}{}", &xml[..start], &xml[end..]))
}

/// Sets `<gui><address>` of a Syncthing `config.xml`.
pub fn set_gui_address(xml: &str, address: &str) -> Result<String, String> {
    let gui = xml.find("<gui ").ok_or("config.xml has no <gui> element")?;
    let open = xml[gui..]
        .find("<address>")
        .map(|i| gui + i + "<address>".len())
        .ok_or("config.xml's <gui> has no <address>")?;
    let close = xml[open..]
        .find("</address>")
        .map(|i| open + i)
        .ok_or("config.xml's <gui> has no </address>")?;
    Ok(format!(
        "{}{}{}",
        &xml[..open],
        xml_escape(address),
        &xml[close..]
    ))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Reads the value of an `<options>` element (for tests and checks).
pub fn option(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.match_indices(&open)
        .filter_map(|(at, _)| {
            let from = at + open.len();
            xml[from..]
                .find(&close)
                .map(|len| xml[from..from + len].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_home_gets_the_agent_options() {
        let home = tempfile::tempdir().expect("tempdir");
        init_home(
            std::path::Path::new("syncthing"),
            home.path(),
            "tcp://0.0.0.0:22000",
            "127.0.0.1:8384",
        )
        .expect("init");
        let xml = std::fs::read_to_string(home.path().join("config.xml")).expect("config");
        for (name, value) in SAFE_OPTIONS {
            assert_eq!(option(&xml, name), [value.to_string()], "{name}");
        }
        assert_eq!(option(&xml, "listenAddress"), ["tcp://0.0.0.0:22000"]);
        assert!(xml.contains("<address>127.0.0.1:8384</address>"));
        let id = std::fs::read(home.path().join("cert.pem")).expect("cert");
        // Idempotent, and the identity survives.
        init_home(
            std::path::Path::new("syncthing"),
            home.path(),
            "tcp://127.0.0.1:22001",
            "127.0.0.1:8385",
        )
        .expect("again");
        let again = std::fs::read_to_string(home.path().join("config.xml")).expect("config");
        assert_eq!(option(&again, "listenAddress"), ["tcp://127.0.0.1:22001"]);
        assert_eq!(
            std::fs::read(home.path().join("cert.pem")).expect("cert"),
            id
        );
        assert_eq!(again.matches("<options>").count(), 1);
    }

    #[test]
    fn several_listen_addresses_become_one() {
        let xml = "<configuration>\n    <gui enabled=\"true\">\n        <address>0.0.0.0:8384</address>\n    </gui>\n    <options>\n        <listenAddress>tcp://a</listenAddress>\n        <listenAddress>quic://b</listenAddress>\n        <natEnabled>true</natEnabled>\n    </options>\n</configuration>\n";
        let out = set_options(
            xml,
            &[("listenAddress", "tcp://c"), ("natEnabled", "false")],
        )
        .expect("set");
        assert_eq!(option(&out, "listenAddress"), ["tcp://c"]);
        assert_eq!(option(&out, "natEnabled"), ["false"]);
        assert!(out.ends_with("    </options>\n</configuration>\n"), "{out}");
        let out = set_gui_address(&out, "127.0.0.1:1").expect("gui");
        assert!(out.contains("<address>127.0.0.1:1</address>"));
    }
}
