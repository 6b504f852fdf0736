//! URLs made safe to print: credentials in the user-info part and in
//! secret-looking query parameters are replaced by `***`.
//!
//! Endpoints of every dependency (the monitor database, ClickHouse, Jolokia
//! and Prometheus exporters) are configured as URLs that may carry a
//! password, and those URLs end up in errors, logs and samples. The rule
//! here errs on the side of hiding too much: a password may itself contain
//! `@`, `:`, `/`, `?` or `#` (unencoded, as operators paste them), so the
//! user-info is taken to run up to the **last** `@` of the URL, and only the
//! user name before the first `:` is kept, when it cannot be part of a host
//! or path.

/// Query parameter names whose values are secrets (compared ignoring case;
/// a name that ends in one of these, e.g. `db_password`, counts too).
const SECRET_PARAMETERS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "apikey",
    "api_key",
    "access_key",
    "auth",
];

const HIDDEN: &str = "***";

/// `url` with its password (and secret query parameters) replaced by `***`:
/// `https://user:p@ss@host/x` → `https://user:***@host/x`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_query(url);
    };
    let rest = match rest.rsplit_once('@') {
        Some((credentials, after)) => {
            let user = credentials
                .split_once(':')
                .map_or(credentials, |(user, _)| user);
            let user_is_plain = !user.contains(['/', '?', '#', '@']);
            if user_is_plain && credentials.contains(':') {
                format!("{user}:{HIDDEN}@{after}")
            } else {
                // No `:`: the whole user-info may be a token given as the
                // user name, so it is hidden too.
                format!("{HIDDEN}@{after}")
            }
        }
        None => rest.to_string(),
    };
    redact_query(&format!("{scheme}://{rest}"))
}

/// Replaces the values of secret-looking query parameters.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}={HIDDEN}"),
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{base}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    SECRET_PARAMETERS
        .iter()
        .any(|secret| name == *secret || name.ends_with(&format!("_{secret}")))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    fn assert_hidden(url: &str, secret: &str, expected: &str) {
        let shown = redact_url(url);
        assert!(!shown.contains(secret), "{url} → {shown} leaks {secret}");
        assert_eq!(shown, expected, "{url}");
    }

    #[test]
    fn plain_password_is_hidden_user_and_host_kept() {
        assert_hidden(
            "mysql://lagwatch:hunter2@db:3306/lagwatch",
            "hunter2",
            "mysql://lagwatch:***@db:3306/lagwatch",
        );
    }

    #[test]
    fn at_signs_inside_the_password_do_not_leak() {
        assert_hidden("https://u:p@ss@host/", "ss@", "https://u:***@host/");
        assert_hidden("https://u:p@ss@host/", "p@", "https://u:***@host/");
        assert_hidden(
            "https://u:@@@@weird@host:8443/jolokia",
            "weird",
            "https://u:***@host:8443/jolokia",
        );
    }

    #[test]
    fn colons_slashes_and_question_marks_in_the_password_do_not_leak() {
        assert_hidden(
            "http://admin:a:b/c?d#e@ch:8123/",
            "a:b/c?d#e",
            "http://admin:***@ch:8123/",
        );
    }

    #[test]
    fn a_token_given_as_the_user_name_is_hidden() {
        assert_hidden(
            "https://ghp_secrettoken@host/x",
            "ghp_secrettoken",
            "https://***@host/x",
        );
    }

    #[test]
    fn secret_query_parameters_are_hidden() {
        assert_hidden(
            "http://ch:8123/?user=lw&password=s3cret&database=x",
            "s3cret",
            "http://ch:8123/?user=lw&password=***&database=x",
        );
        assert_hidden(
            "mysql://h/db?ssl-mode=VERIFY_CA&DB-Password=s3cret#frag",
            "s3cret",
            "mysql://h/db?ssl-mode=VERIFY_CA&DB-Password=***#frag",
        );
        assert_hidden(
            "http://h/metrics?access_token=abc123",
            "abc123",
            "http://h/metrics?access_token=***",
        );
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        for url in [
            "http://127.0.0.1:8123",
            "https://host:8778/jolokia/read/kafka.server:type=*",
            "sqlite:///tmp/x.db?mode=rwc",
            "not a url",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
