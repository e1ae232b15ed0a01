//! Environment references in config values: `${VAR}` is replaced by the variable's value,
//! so secrets live in the environment and never in the config file.

/// Replaces every `${VAR}` in `s` with the value of environment variable `VAR`.
/// `$$` stands for a literal `$`; a `$` not followed by `{` or `$` is kept as it is.
pub fn expand(s: &str) -> Result<String, String> {
    expand_with(s, |name| std::env::var(name).ok())
}

/// Like [`expand`] but looks variables up with `lookup` (tests, or a secrets file).
pub fn expand_with(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let Some(end) = tail.find('}') else {
                return Err(format!(
                    "`${{` without a closing `}}` in `{}`; write `${{VAR_NAME}}`",
                    redact(s)
                ));
            };
            let name = tail[..end].trim();
            if !is_var_name(name) {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name; use letters, digits \
                     and `_`, e.g. `${{CRM_DB_URL}}`"
                ));
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "environment variable `{name}` is not set; export it before starting \
                         qiao (e.g. `export {name}=...`)"
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of all `${VAR}` references in `s`, in order (for `qiao check`).
pub fn references(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(pos) = rest.find("${") {
        let tail = &rest[pos + 2..];
        match tail.find('}') {
            Some(end) => {
                names.push(tail[..end].trim().to_string());
                rest = &tail[end + 1..];
            }
            None => break,
        }
    }
    names
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True when `url` carries a literal password (`scheme://user:secret@host/...` or a
/// `password=` query parameter) that does not come from a `${...}` reference.
pub fn has_inline_secret(url: &str) -> bool {
    let Some(scheme_end) = url.find("://") else {
        return query_password(url);
    };
    let after = &url[scheme_end + 3..];
    // The authority ends at the first `/`, `?` or `#` that is not inside `${...}`.
    let auth_end = authority_end(after);
    let authority = &after[..auth_end];
    if let Some(at) = authority.rfind('@') {
        let userinfo = &authority[..at];
        if let Some(colon) = find_outside_refs(userinfo, ':') {
            let pw = &userinfo[colon + 1..];
            if !pw.is_empty() && !is_only_refs(pw) {
                return true;
            }
        }
    }
    query_password(&after[auth_end..])
}

fn authority_end(s: &str) -> usize {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b'/' | b'?' | b'#' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    s.len()
}

fn find_outside_refs(s: &str, needle: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut prev = '\0';
    for (i, c) in s.char_indices() {
        match c {
            '{' if prev == '$' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if c == needle && depth == 0 => return Some(i),
            _ => {}
        }
        prev = c;
    }
    None
}

/// True when `s` consists only of `${...}` references (so no literal secret).
fn is_only_refs(s: &str) -> bool {
    let mut rest = s;
    while !rest.is_empty() {
        let Some(tail) = rest.strip_prefix("${") else {
            return false;
        };
        let Some(end) = tail.find('}') else {
            return false;
        };
        rest = &tail[end + 1..];
    }
    true
}

fn query_password(s: &str) -> bool {
    let Some(q) = s.find('?') else { return false };
    s[q + 1..].split(['&', ';']).any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = k.to_ascii_lowercase();
        matches!(
            k.as_str(),
            "password" | "pwd" | "pass" | "passwd" | "secret" | "token"
        ) && !v.is_empty()
            && !is_only_refs(v)
    })
}

/// `s` with the password part of a URL replaced by `***`, for messages and logs.
pub fn redact(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let after = &s[scheme_end + 3..];
    let auth_end = authority_end(after);
    let authority = &after[..auth_end];
    if let Some(at) = authority.rfind('@')
        && let Some(colon) = find_outside_refs(&authority[..at], ':')
    {
        return format!(
            "{}{}:***{}",
            &s[..scheme_end + 3],
            &authority[..colon],
            &after[at..]
        );
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DB_PW" => Some("s3cret".into()),
            "HOST" => Some("db.local".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        assert_eq!(
            expand_with("postgres://u:${DB_PW}@${HOST}/x", env).unwrap(),
            "postgres://u:s3cret@db.local/x"
        );
        assert_eq!(
            expand_with("cost $5 and $$x", env).unwrap(),
            "cost $5 and $x"
        );
    }

    #[test]
    fn missing_variable_is_named_with_fix() {
        let e = expand_with("x${NOPE}y", env).unwrap_err();
        assert!(e.contains("`NOPE`") && e.contains("export NOPE="), "{e}");
        let e = expand_with("x${NOPE", env).unwrap_err();
        assert!(e.contains("closing"), "{e}");
        let e = expand_with("${a-b}", env).unwrap_err();
        assert!(e.contains("not a valid"), "{e}");
    }

    #[test]
    fn real_environment_is_read() {
        // PATH is set in every environment cargo test runs in.
        assert!(!expand("${PATH}").unwrap().is_empty());
    }

    #[test]
    fn finds_references() {
        assert_eq!(references("a${X}b${ Y }"), vec!["X", "Y"]);
    }

    #[test]
    fn inline_secrets_are_found() {
        assert!(has_inline_secret("postgres://u:pw@h/db"));
        assert!(has_inline_secret("mysql://root:p%40ss@127.0.0.1:3306/test"));
        assert!(has_inline_secret("postgres://u:${X}pw@h/db"));
        assert!(has_inline_secret("postgres://h/db?user=u&password=pw"));
        assert!(!has_inline_secret("postgres://u:${DB_PW}@h/db"));
        assert!(!has_inline_secret("postgres://u@h/db"));
        assert!(!has_inline_secret("mysql://root:@127.0.0.1/test"));
        assert!(!has_inline_secret("${CRM_URL}"));
        assert!(!has_inline_secret("sqlite://crm.db"));
        assert!(!has_inline_secret("postgres://h/db?password=${PW}"));
        assert!(!has_inline_secret("postgres://u:${A/B}@h/db"));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
