//! Kubernetes naming rules: DNS-1123 labels and subdomains, label keys and label values.
//!
//! Each check returns `Err(reason)` with a sentence fragment that callers put after
//! "… is not valid: ". The rules are those of `k8s.io/apimachinery/pkg/util/validation`.

/// Longest DNS-1123 label (spec names, namespaces, container names, label name parts).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (pod names, label key prefixes).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// A DNS-1123 label: at most 63 characters of `a-z`, `0-9` and `-`, starting and ending with an
/// alphanumeric character.
pub fn check_dns1123_label(s: &str) -> Result<(), String> {
    check_length(s, DNS1123_LABEL_MAX)?;
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "it contains {c:?}; only lowercase letters, digits and '-' are allowed"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("it must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters in all.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    check_length(s, DNS1123_SUBDOMAIN_MAX)?;
    for part in s.split('.') {
        check_dns1123_label(part).map_err(|reason| {
            if part.is_empty() {
                "it has an empty part between dots".to_string()
            } else {
                format!("part {part:?} is not a DNS-1123 label: {reason}")
            }
        })?;
    }
    Ok(())
}

/// A label key: an optional DNS-1123 subdomain prefix and `/`, then a name of at most 63
/// characters of alphanumerics, `-`, `_` and `.` that starts and ends with an alphanumeric.
pub fn check_label_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        check_dns1123_subdomain(prefix).map_err(|r| format!("its prefix {prefix:?}: {r}"))?;
    }
    check_qualified_part(name).map_err(|r| {
        if prefix.is_some() {
            format!("its name part {name:?}: {r}")
        } else {
            r
        }
    })
}

/// A label value: empty, or at most 63 characters of alphanumerics, `-`, `_` and `.` that
/// starts and ends with an alphanumeric.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    check_qualified_part(s)
}

fn check_qualified_part(s: &str) -> Result<(), String> {
    check_length(s, DNS1123_LABEL_MAX)?;
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "it contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(s.chars().next()) || !alnum(s.chars().last()) {
        return Err("it must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Not empty, and at most `max` characters.
fn check_length(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > max {
        return Err(format!(
            "it is {} characters long; the limit is {max}",
            s.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(check_dns1123_label("web-1").is_ok());
        assert!(check_dns1123_label("Web").is_err());
        assert!(check_dns1123_label("-web").is_err());
        assert!(check_dns1123_label("web_1").is_err());
        assert!(check_dns1123_label(&"a".repeat(64)).is_err());
        assert!(check_dns1123_label(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn subdomains() {
        assert!(check_dns1123_subdomain("web-0.example").is_ok());
        assert!(check_dns1123_subdomain("web..x").is_err());
        assert!(check_dns1123_subdomain("web.").is_err());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(check_label_key("app").is_ok());
        assert!(check_label_key("app.kubernetes.io/name").is_ok());
        assert!(check_label_key("App_Name.x").is_ok());
        assert!(check_label_key("/name").is_err());
        assert!(check_label_key("Example.com/name").is_err());
        assert!(check_label_key("name-").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_3").is_ok());
        assert!(check_label_value("..").is_err());
        assert!(check_label_value("a b").is_err());
    }
}
